using System.Runtime.CompilerServices;

namespace ProfileArena.Native;

/// <summary>
/// A tree's subtree totals kept from one read to the next (<see cref="TreeStoreOptions.KeepSubtreeTotals"/>): what
/// <c>MergeTruncated</c> would otherwise recompute over every node of a source that has not changed since.
/// </summary>
/// <remarks>
/// Layout: this 24-byte header followed by Count totals (8 bytes each, indexed by node), one native block charged to
/// the store, published in <see cref="TreeRecord.Totals"/> by a reader with a compare-exchange, exactly like an
/// <see cref="IterationPlan"/>: valid while its <see cref="Version"/> is the tree's <see cref="TreeLock.Version"/>; a
/// reader uses it only under the tree's read lock, so no write — and no replacement, which only a reader that found
/// it stale makes — can happen while it is in use; freed when replaced or with the tree.
/// </remarks>
internal unsafe struct CachedTotals
{
    public ulong Version;  // the tree's TreeLock.Version when computed
    public uint Count;     // nodes (root included)
    public nuint Bytes;

    public ulong* Values => (ulong*)((byte*)Unsafe.AsPointer(ref this) + sizeof(CachedTotals));

    public static nuint SizeFor(uint count) => (nuint)sizeof(CachedTotals) + (nuint)count * sizeof(ulong);

    public static void Free(NativeAllocator* memory, CachedTotals* totals)
    {
        if (totals != null) NativeAllocator.Free(memory, totals, totals->Bytes);
    }
}
