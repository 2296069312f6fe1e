namespace ProfileArena.Native;

/// <summary>
/// One call's reference on a store's <see cref="StoreHandle"/> (taken by <see cref="TreeStore.Pin"/>):
/// while it lives, Dispose on another thread cannot free the memory <see cref="Root"/> points to.
/// A ref struct, so it cannot outlive the call and costs no allocation.
/// </summary>
internal readonly unsafe ref struct StorePin
{
    private readonly StoreHandle _handle;

    internal StorePin(StoreHandle handle) => _handle = handle;

    public StoreRoot* Root => _handle.Root;

    // The facade (TreeStore, ProfileTree) reads the store through these, never through StoreRoot's layout.

    /// <summary>Trees created and not removed.</summary>
    public int LiveTreeCount => Root->LiveTreeCount;

    /// <summary>Nodes of all trees, roots included.</summary>
    public long TotalNodes => Root->TotalNodes;

    /// <summary>Bytes the store holds from NativeMemory.</summary>
    public long HeldBytes => Root->HeldBytes;

    /// <summary>Tree slots ever used (live or free): ids are below it.</summary>
    public uint SlotCount => Root->SlotCount;

    /// <summary>True and the generation when slot <paramref name="id"/> holds a live tree.</summary>
    public bool TryGetLive(uint id, out uint generation) => Root->TryGetLive(id, out generation);

    /// <summary>The record of live tree <paramref name="id"/> of <paramref name="generation"/> (throws if it is gone).</summary>
    public TreeRecord* LiveTree(uint id, uint generation) => Root->LiveTree(id, generation);

    public void Dispose() => _handle.DangerousRelease();
}
