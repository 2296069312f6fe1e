using System.Runtime.InteropServices;
using ProfileArena.Native;

namespace ProfileArena.Engine;

/// <summary>
/// Every node's total (Σ self over its subtree), in native scratch indexed by node: what Iterate's
/// plan, Top and Truncate read (nodes store only self; see <see cref="Node"/>). Freed by <see cref="Dispose"/>.
/// </summary>
/// <remarks>
/// One backward pass: children have higher indices than their parents (the tree's invariant), so going
/// from the last index down completes each subtree before its parent is read; it reads each node once, slab by slab. Sums cannot overflow:
/// each is at most the tree's total. Caller holds the tree's lock (read or write).
/// </remarks>
internal readonly unsafe struct SubtreeTotals : IDisposable
{
    private readonly ulong* _totals;
    private readonly uint _count;
    private readonly bool _owned; // process scratch of this read (false: a tree's kept totals, see Kept)

    public SubtreeTotals(ref NodeSlabs nodes)
    {
        uint count = nodes.Count;
        _count = count;
        _owned = true;
        _totals = (ulong*)NativeAllocator.AllocScratch((nuint)count * sizeof(ulong));
        Compute(ref nodes, _totals);
    }

    private SubtreeTotals(ulong* kept, uint count)
    {
        _totals = kept;
        _count = count;
        _owned = false;
    }

    /// <summary>
    /// The totals of <paramref name="tree"/> (its read lock held by the caller) for a store that keeps them
    /// (<see cref="TreeStoreOptions.KeepSubtreeTotals"/>): the kept block if it is of the tree's current version, else
    /// computed into a new block charged to the store and published in place of the stale one (as the iteration plan
    /// is); computed for this read alone when the store does not keep totals or has no room for them.
    /// </summary>
    public static SubtreeTotals Kept(StoreRoot* root, TreeRecord* tree)
    {
        if (!root->KeepSubtreeTotals) return new SubtreeTotals(ref tree->Nodes);
        ulong version = tree->Lock.Version;
        uint count = tree->Nodes.Count;
        var cached = (CachedTotals*)Volatile.Read(ref tree->Totals);
        if (cached != null && cached->Version == version && cached->Count == count) return new SubtreeTotals(cached->Values, count);
        nuint bytes = CachedTotals.SizeFor(count);
        if (!root->HasRoomToKeep(bytes)) return new SubtreeTotals(ref tree->Nodes); // as for plans: inserts come first
        CachedTotals* fresh;
        try
        {
            fresh = (CachedTotals*)NativeAllocator.Alloc(&root->Memory, bytes, zeroed: false);
        }
        catch (StoreLimitExceededException)
        {
            return new SubtreeTotals(ref tree->Nodes);
        }
        fresh->Version = version;
        fresh->Count = count;
        fresh->Bytes = bytes;
        Compute(ref tree->Nodes, fresh->Values);
        nint published = Interlocked.CompareExchange(ref tree->Totals, (nint)fresh, (nint)cached);
        if (published == (nint)cached)
        {
            CachedTotals.Free(&root->Memory, cached); // stale: no reader can be using it (see CachedTotals)
            return new SubtreeTotals(fresh->Values, count);
        }
        // Another reader of this version published first: use its block (it stays while this read lock is held).
        CachedTotals.Free(&root->Memory, fresh);
        var other = (CachedTotals*)published;
        return other != null && other->Version == version && other->Count == count ? new SubtreeTotals(other->Values, count) : new SubtreeTotals(ref tree->Nodes);
    }

    private static void Compute(ref NodeSlabs nodes, ulong* totals)
    {
        uint count = nodes.Count;
        NativeMemory.Clear(totals, (nuint)count * sizeof(ulong));
        // One backward pass, slab by slab (a pointer steps back through each slab's contiguous nodes): when node i is
        // reached its descendants, all at higher indices, have added their totals to it; add its self, pass it up.
        uint end = count;
        while (end > 1)
        {
            uint last = end - 1, start = Math.Max(NodeSlabs.SlabStart(last), 1u);
            Node* node = nodes[new NodeIndex(last)];
            for (uint i = last; ; i--, node--)
            {
                ulong total = totals[i] + node->Self;
                totals[i] = total;
                totals[node->Parent.Value] += total;
                if (i == start) break;
            }
            end = start;
        }
        totals[0] += nodes[NodeIndex.Root]->Self;
    }

    public ulong this[NodeIndex node] => _totals[node.Value];

    public void Dispose()
    {
        if (_owned) NativeAllocator.FreeScratch(_totals, (nuint)_count * sizeof(ulong));
    }
}
