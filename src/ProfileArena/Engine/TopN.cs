using System.Diagnostics;
using ProfileArena.Native;

namespace ProfileArena.Engine;

/// <summary>
/// Top(n): the n nodes with the largest self (or total), ties in ordinal order of their stacks, in
/// O(N log N) name comparisons on any shape (no stack is ever built to break a tie).
/// Caller holds the tree's read lock.
/// </summary>
/// <remarks>
/// 1. One pass with a bounded min-heap of values (<see cref="LargestValues"/>) finds the cut: the n-th largest value.
/// 2. Every node at or above the cut is a candidate (fewer than n above it; any number at it).
/// 3. If candidates share a value, their stacks are ranked in ordinal byte order without building
///    them: <see cref="RankStacks"/> walks the union of their root paths once, ordering each node's
///    children by name. (Comparing two built stacks per tie, as before, was O(depth) per comparison:
///    53 s for a 100,000-deep chain.)
/// 4. Candidates are sorted by (value desc, rank asc) and the first n get their stacks built.
/// </remarks>
internal static unsafe class TopN
{
    /// <summary>Name comparisons and candidate comparisons made by Top on this thread (tests prove linearithmic work with it).</summary>
    [ThreadStatic] internal static long t_comparisons;

    private struct Candidate
    {
        public ulong Value;
        public NodeIndex Index;
        public uint Rank;   // ordinal position of the stack among tied candidates (0 when not needed)
    }

    public static TopEntry[] Find(StoreRoot* root, TreeRecord* tree, int n, TopBy by)
    {
        ref NodeSlabs nodes = ref tree->Nodes;
        uint count = nodes.Count;
        if (n == 0 || count <= 1) return [];
        int k = (int)Math.Min((uint)n, count - 1);
        using var totals = new SubtreeTotals(ref nodes);
        Candidate* candidates = null;
        nuint candidatesBytes = 0;
        try
        {
            ulong cut = Cut(ref nodes, totals, count, k, by);
            if (cut == 0) return [];

            uint found = 0;
            for (uint i = 1; i < count; i++)
                if (Value(ref nodes, totals, new NodeIndex(i), by) >= cut) found++;
            candidatesBytes = (nuint)found * (nuint)sizeof(Candidate);
            candidates = (Candidate*)NativeAllocator.AllocScratch(Math.Max(candidatesBytes, 1));
            var span = new Span<Candidate>(candidates, (int)found);
            uint c = 0;
            for (uint i = 1; i < count; i++)
            {
                var index = new NodeIndex(i);
                ulong value = Value(ref nodes, totals, index, by);
                if (value >= cut) span[(int)c++] = new Candidate { Value = value, Index = index };
            }

            span.Sort(new ByValue());
            bool ties = false;
            for (int i = 1; i < span.Length && !ties; i++) ties = span[i].Value == span[i - 1].Value;
            if (ties)
            {
                RankStacks(root, tree, span);
                span.Sort(new ByValueThenRank());
            }

            var result = new TopEntry[Math.Min(k, span.Length)];
            var builder = new StackBuilder(root, tree);
            for (int i = 0; i < result.Length; i++)
            {
                NodeIndex index = span[i].Index;
                result[i] = new TopEntry(builder.Build(index), nodes[index]->Self, totals[index]);
            }
            return result;
        }
        finally
        {
            if (candidates != null) NativeAllocator.FreeScratch(candidates, Math.Max(candidatesBytes, 1));
        }
    }

    private static ulong Value(ref NodeSlabs nodes, in SubtreeTotals totals, NodeIndex i, TopBy by) => by == TopBy.Self ? nodes[i]->Self : totals[i];

    /// <summary>The k-th largest non-zero value (or the smallest non-zero one if fewer), 0 if none.</summary>
    private static ulong Cut(ref NodeSlabs nodes, in SubtreeTotals totals, uint count, int k, TopBy by)
    {
        using var best = new LargestValues(k);
        for (uint i = 1; i < count; i++)
        {
            ulong value = Value(ref nodes, totals, new NodeIndex(i), by);
            if (value != 0) best.Offer(value);
        }
        return best.Count == 0 ? 0 : best.Min;
    }

    private const byte IsCandidate = 1; // the node is a candidate (needs a rank)
    private const byte OnPath = 2;     // the node is a candidate or an ancestor of one
    private const byte Ancestor = 4;   // a candidate lies strictly below the node: its descendants are expanded

    /// <summary>
    /// Gives every candidate its stack's position in ordinal byte order. The stacks of a subtree are
    /// not contiguous in that order (with siblings "a" and "a!", "a" &lt; "a!" &lt; "a;x", since
    /// '!' &lt; ';'), so each child c is two items: the node itself ("name" then the end, which sorts
    /// below every byte) and its descendants ("name;" then more). Sorting a node's items by those
    /// strings and expanding descendant items depth-first yields the stacks in ordinal order.
    /// Only the candidates' root paths are walked; each node's items are sorted once: O(N log N).
    /// </summary>
    private static void RankStacks(StoreRoot* root, TreeRecord* tree, Span<Candidate> candidates)
    {
        ref NodeSlabs nodes = ref tree->Nodes;
        uint count = nodes.Count;
        nuint flagsBytes = count, rankBytes = (nuint)count * sizeof(uint);
        var flags = (byte*)NativeAllocator.AllocScratch(flagsBytes);
        var ranks = (uint*)NativeAllocator.AllocScratch(rankBytes);
        try
        {
            new Span<byte>(flags, (int)count).Clear();
            foreach (ref Candidate c in candidates)
            {
                flags[c.Index.Value] |= IsCandidate;
                for (NodeIndex i = c.Index; !i.IsNone && (flags[i.Value] & OnPath) == 0; i = nodes[i]->Parent)
                {
                    flags[i.Value] |= OnPath;
                    flags[nodes[i]->Parent.Value] |= Ancestor;
                }
            }

            var comparer = new ItemOrder(root, tree);
            var items = new List<Item>();   // the sorted items of the node being expanded
            var stack = new List<Item>();   // items still to visit, next on top
            uint rank = 0;
            stack.Add(new Item(NodeIndex.Root, Self: false));
            while (stack.Count > 0)
            {
                Item item = stack[^1];
                stack.RemoveAt(stack.Count - 1);
                if (item.Self)
                {
                    ranks[item.Node.Value] = rank++;
                    continue;
                }
                items.Clear();
                for (NodeIndex c = nodes[item.Node]->FirstChild; !c.IsNone; c = nodes[c]->NextSibling)
                {
                    byte f = flags[c.Value];
                    if ((f & IsCandidate) != 0) items.Add(new Item(c, Self: true));
                    if ((f & Ancestor) != 0) items.Add(new Item(c, Self: false));
                }
                items.Sort(comparer);
                for (int i = items.Count - 1; i >= 0; i--) stack.Add(items[i]);
            }
            foreach (ref Candidate c in candidates) c.Rank = ranks[c.Index.Value];
        }
        finally
        {
            NativeAllocator.FreeScratch(flags, flagsBytes);
            NativeAllocator.FreeScratch(ranks, rankBytes);
        }
    }

    private readonly record struct Item(NodeIndex Node, bool Self);

    /// <summary>Items of one parent by "name + terminator": the end (self) sorts below every byte, ';' (descendants) in its place.</summary>
    private sealed class ItemOrder(StoreRoot* root, TreeRecord* tree) : IComparer<Item>
    {
        public int Compare(Item a, Item b)
        {
            t_comparisons++;
            if (a.Node == b.Node) return a.Self == b.Self ? 0 : a.Self ? -1 : 1;
            ReadOnlySpan<byte> x = root->Symbols.Name(tree->Nodes[a.Node]->Symbol);
            ReadOnlySpan<byte> y = root->Symbols.Name(tree->Nodes[b.Node]->Symbol);
            int common = x.CommonPrefixLength(y);
            int cx = common < x.Length ? x[common] : a.Self ? -1 : TreeWriter.Separator;
            int cy = common < y.Length ? y[common] : b.Self ? -1 : TreeWriter.Separator;
            // Sibling names are distinct and hold no ';', so cx ≠ cy; a mapped snapshot's siblings are
            // not checked for distinct names, hence the index as a last, deterministic resort.
            return cx != cy ? cx.CompareTo(cy) : a.Node.Value.CompareTo(b.Node.Value);
        }
    }

    private readonly struct ByValue : IComparer<Candidate>
    {
        public int Compare(Candidate a, Candidate b)
        {
            t_comparisons++;
            return b.Value.CompareTo(a.Value);
        }
    }

    private readonly struct ByValueThenRank : IComparer<Candidate>
    {
        public int Compare(Candidate a, Candidate b)
        {
            t_comparisons++;
            int byValue = b.Value.CompareTo(a.Value);
            return byValue != 0 ? byValue : a.Rank.CompareTo(b.Rank);
        }
    }

    /// <summary>Builds one stack from its parent chain: O(depth + bytes), once per winner.</summary>
    private readonly struct StackBuilder(StoreRoot* root, TreeRecord* tree)
    {
        private readonly List<NodeIndex> _path = new();

        public byte[] Build(NodeIndex index)
        {
            _path.Clear();
            long length = -1;
            for (NodeIndex i = index; !i.IsNone; i = tree->Nodes[i]->Parent)
            {
                _path.Add(i);
                length += 1 + root->Symbols.Name(tree->Nodes[i]->Symbol).Length;
            }
            // ≤ MaxStackBytes (≤ 2^30) by the store's invariant; checked since it sizes an array.
            var stack = new byte[checked((int)length)];
            int at = 0;
            for (int d = _path.Count - 1; d >= 0; d--)
            {
                if (d != _path.Count - 1) stack[at++] = TreeWriter.Separator;
                ReadOnlySpan<byte> name = root->Symbols.Name(tree->Nodes[_path[d]]->Symbol);
                name.CopyTo(stack.AsSpan(at));
                at += name.Length;
            }
            Debug.Assert(at == stack.Length);
            return stack;
        }
    }
}
