using ProfileArena.Native;

namespace ProfileArena.Engine;

/// <summary>
/// Every node's total (Σ self over its subtree), in native scratch indexed by node: what Iterate's
/// plan, Top and Truncate read (nodes store only self; see <see cref="Node"/>). Freed by <see cref="Dispose"/>.
/// </summary>
/// <remarks>
/// One backward pass: children have higher indices than their parents (the tree's invariant), so going
/// from the last index down completes each subtree before its parent is read. Sums cannot overflow:
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
        for (uint i = 0; i < count; i++) _totals[i] = nodes[new NodeIndex(i)]->Self;
        for (uint i = count - 1; i > 0; i--) _totals[nodes[new NodeIndex(i)]->Parent.Value] += _totals[i];
    }

    public ulong this[NodeIndex node] => _totals[node.Value];

    public void Dispose() => NativeAllocator.FreeScratch(_totals, (nuint)_count * sizeof(ulong));
}
