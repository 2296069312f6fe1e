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

    public SubtreeTotals(ref NodeSlabs nodes)
    {
        uint count = nodes.Count;
        _count = count;
        _totals = (ulong*)NativeAllocator.AllocScratch((nuint)count * sizeof(ulong));
        NativeMemory.Clear(_totals, (nuint)count * sizeof(ulong));
        // One backward pass, slab by slab (a pointer steps back through each slab's contiguous nodes): when node i is
        // reached its descendants, all at higher indices, have added their totals to it; add its self, pass it up.
        uint end = count;
        while (end > 1)
        {
            uint last = end - 1, start = Math.Max(NodeSlabs.SlabStart(last), 1u);
            Node* node = nodes[new NodeIndex(last)];
            for (uint i = last; ; i--, node--)
            {
                ulong total = _totals[i] + node->Self;
                _totals[i] = total;
                _totals[node->Parent.Value] += total;
                if (i == start) break;
            }
            end = start;
        }
        _totals[0] += nodes[NodeIndex.Root]->Self;
    }

    public ulong this[NodeIndex node] => _totals[node.Value];

    public void Dispose() => NativeAllocator.FreeScratch(_totals, (nuint)_count * sizeof(ulong));
}
