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

    public void Dispose() => _handle.DangerousRelease();
}
