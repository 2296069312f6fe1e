using ProfileArena.Engine;
using ProfileArena.Native;

namespace ProfileArena;

public readonly unsafe partial struct ProfileTree
{
    /// <summary>Removes every node but the root and frees their memory; the handle stays valid and
    /// <see cref="Total"/> becomes 0.</summary>
    /// <exception cref="InvalidOperationException">The store is read-only, the tree was removed, or the
    /// calling thread is iterating it.</exception>
    public void Clear()
    {
        TreeStore store = Store;
        using StorePin pin = store.Pin();
        TreeRecord* tree = store.TreeForWrite(pin, _id, _generation);
        using var _ = TreeWriteScope.Enter(tree, _generation, "clear");
        TreeLifecycle.Clear(pin.Root, tree);
    }

    /// <summary>
    /// Keeps the <paramref name="maxNodes"/> nodes with the largest totals (and every node tied with the
    /// smallest of them) and folds each parent's other children into one child named <c>other</c>, the
    /// way pyroscope truncates a flame graph. Every kept node keeps its total and self; each
    /// <c>other</c> node's self and total are the sum of the totals folded into it (an existing
    /// <c>other</c> child is always kept and receives the fold). The root's total never changes.
    /// </summary>
    /// <returns>Nodes removed from the tree (net of the <c>other</c> nodes added).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxNodes"/> is less than 1.</exception>
    /// <exception cref="StoreLimitExceededException">The rebuilt node slabs would pass the native budget; the tree is unchanged.</exception>
    public long Truncate(long maxNodes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxNodes, 1);
        return Truncate(maxNodes, 0);
    }

    /// <summary>
    /// Makes this empty tree the sum of <paramref name="sources"/> truncated to <paramref name="maxNodes"/>: the tree that
    /// <see cref="MergeFrom(ProfileTree)"/> of every source followed by <see cref="Truncate(long)"/> would give, built
    /// without the sum. It reads each source's nodes once for their totals, then only the kept nodes of the sum and
    /// their children (a best-first walk from the root, largest totals first), so a flame graph of a few large trees
    /// costs a pass over them instead of a copy of every node. Sources may belong to any stores, this one included.
    /// </summary>
    /// <param name="sources">The trees to sum (any number; read, never changed).</param>
    /// <param name="maxNodes">Nodes to keep, as for <see cref="Truncate(long)"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxNodes"/> is less than 1.</exception>
    /// <exception cref="ArgumentException">This tree is not empty, or is one of the sources.</exception>
    /// <exception cref="OverflowException">A total of the sum would pass 2^64 − 1; this tree stays empty.</exception>
    /// <exception cref="StoreLimitExceededException">This store's caps would be passed; this tree is left empty.</exception>
    public void MergeTruncated(ReadOnlySpan<ProfileTree> sources, long maxNodes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxNodes, 1);
        if (NodeCount != 1) throw new ArgumentException("MergeTruncated writes into an empty tree; this one has nodes.", nameof(sources));
        foreach (ProfileTree source in sources)
        {
            if (source == this) throw new ArgumentException("MergeTruncated cannot read the tree it writes.", nameof(sources));
        }
        TruncatedSum.Run(this, sources, maxNodes);
    }

    /// <summary>
    /// Folds every node whose total is below <paramref name="minTotal"/> (with its subtree) into a child
    /// named <c>other</c> of its parent, as <see cref="Truncate(long)"/> does for its computed cut.
    /// </summary>
    /// <returns>Nodes removed from the tree (net of the <c>other</c> nodes added).</returns>
    public long TruncateBelow(ulong minTotal) => Truncate(0, minTotal);

    private long Truncate(long maxNodes, ulong minTotal)
    {
        TreeStore store = Store;
        using StorePin pin = store.Pin();
        TreeRecord* tree = store.TreeForWrite(pin, _id, _generation);
        using var _ = TreeWriteScope.Enter(tree, _generation, "truncate");
        if (maxNodes > 0 ? tree->Nodes.Count - 1 <= (ulong)maxNodes : minTotal == 0) return 0; // nothing to cut
        using var totals = new SubtreeTotals(ref tree->Nodes); // one pass, read by the cut and by the fold
        if (maxNodes > 0) minTotal = TreeTruncator.MinTotal(tree, maxNodes, totals);
        return minTotal == 0 ? 0 : TreeTruncator.FoldBelow(store.StoreLock, pin.Root, tree, minTotal, totals);
    }

    /// <summary>
    /// The <paramref name="n"/> nodes with the largest self (or total) value, largest first; ties in
    /// ordinal order of their stacks. Nodes whose value is 0 are left out. Only the winners' stacks
    /// are built; the scan itself keeps node indices in a bounded heap.
    /// </summary>
    public TopEntry[] Top(int n, TopBy by)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (by is not (TopBy.Self or TopBy.Total)) throw new ArgumentOutOfRangeException(nameof(by));
        TreeStore store = Store;
        using StorePin pin = store.Pin();
        TreeRecord* tree = store.TreeForRead(pin, _id, _generation);
        using var _ = TreeReadScope.Enter(tree, _generation);
        return TopN.Find(pin.Root, tree, n, by);
    }
}

/// <summary>What <see cref="ProfileTree.Top"/> ranks nodes by.</summary>
public enum TopBy
{
    /// <summary>Value of keys ending at the node.</summary>
    Self,
    /// <summary>Value of keys passing through or ending at the node.</summary>
    Total,
}

/// <summary>One node returned by <see cref="ProfileTree.Top"/>.</summary>
/// <param name="Stack">The node's path, names joined by ';' (UTF-8 bytes as inserted).</param>
/// <param name="Self">Value of keys ending at the node.</param>
/// <param name="Total">Value of keys passing through or ending at the node.</param>
public readonly record struct TopEntry(byte[] Stack, ulong Self, ulong Total)
{
    /// <summary>The stack decoded as UTF-8.</summary>
    public string StackText => System.Text.Encoding.UTF8.GetString(Stack);

    /// <inheritdoc/>
    public override string ToString() => $"{StackText} self={Self} total={Total}";

    /// <summary>
    /// Equal when both values are equal and the stacks hold the same bytes (not the same array: the
    /// generated equality compared the array by reference, so two calls' results never matched).
    /// </summary>
    public bool Equals(TopEntry other) =>
        Self == other.Self && Total == other.Total && Stack.AsSpan().SequenceEqual(other.Stack);

    /// <summary>A hash over the stack's bytes and both values, consistent with <see cref="Equals(TopEntry)"/>.</summary>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.AddBytes(Stack);
        hash.Add(Self);
        hash.Add(Total);
        return hash.ToHashCode();
    }
}
