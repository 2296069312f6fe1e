using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using ProfileArena.Native;

namespace ProfileArena.Engine;

/// <summary>
/// <c>MergeTruncated</c>: the truncation (<see cref="TreeTruncator"/>'s rule) of the sum of several trees, computed
/// without building the sum. A query that merges a few large cached trees only to keep their top thousand nodes
/// spent most of its time copying millions of nodes it then dropped; this reads only the kept nodes and their children.
/// </summary>
/// <remarks>
/// <para>A node of the sum is a path; its members are the nodes with that path in each source, its total and self
/// the sums of theirs. Its children are found by gathering the members' children and grouping them by name in a hash
/// table (equal names, at most one per source, chained in the order gathered). Totals come from each source's <see cref="SubtreeTotals"/>
/// (one backward pass over its slabs): the one part that reads every node.</para>
/// <para>The cut is found best-first: a max-heap holds the nodes of the sum whose parents were taken, largest total
/// first. A child's total never exceeds its parent's, so the heap yields totals in descending order and the
/// maxNodes-th node taken has the maxNodes-th largest total of the whole sum — <see cref="TreeTruncator.MinTotal"/>'s
/// cut — while nodes below it are never expanded. Taking goes on while the top is at the cut (ties are kept, as
/// Truncate keeps them). Then, as <see cref="TreeTruncator.FoldBelow"/> does: a child named <c>other</c> of a kept
/// node is kept whatever its total, and each kept node's dropped children's totals go into the self of its
/// <c>other</c> child (the kept one, or a new one).</para>
/// <para>Caller's duties (<c>ProfileTree.MergeTruncated</c>): every source store pinned and every source's read
/// lock held while <see cref="Select"/> runs; the stores still pinned while <see cref="Write"/> reads the names
/// (arena bytes never move while a store lives). Nothing here takes a lock or writes a source.</para>
/// </remarks>
internal static unsafe class TruncatedSum
{
    /// <summary>The walk's arrays, pooled apart from <see cref="ArrayPool{T}.Shared"/>: that pool keeps an array per size
    /// in each thread's cache, and a server sums on any of its many pool threads — at 30 M nodes under load 60 MiB of its
    /// live managed heap were these arrays, one per thread and size (perf/README "Eighth session"). Here at most four per
    /// size are kept, in shared buckets: as many as renders summing at once.</summary>
    private static class Pool<T>
    {
        public static readonly ArrayPool<T> Arrays = ArrayPool<T>.Create(maxArrayLength: 1 << 24, maxArraysPerBucket: 4);
    }

    /// <summary>One source tree: its nodes, names and subtree totals (owned by the caller).</summary>
    public struct Source
    {
        public NodeSlabs* Nodes;
        public SymbolTable* Symbols;
        public SubtreeTotals Totals;
    }

    /// <summary>A node of the sum.</summary>
    private struct SumNode
    {
        public byte* Name;
        public int NameLength;
        public int Parent;                   // into the nodes array (the root: 0, unused)
        public int FirstMember, MemberCount; // into the members array
        public int FirstChild, ChildCount;   // into the nodes array, once expanded (FirstChild −1 before)
        public ulong Total, Self;
        public ulong Fold;                   // kept nodes: the totals of dropped children, for the `other` child
        public int PathEnd;                  // while writing: the end of this node's path in the path buffer
        public bool Kept, IsOther;
    }

    /// <summary>One member of a node of the sum: a node of one source.</summary>
    private struct Member
    {
        public int Source;
        public NodeIndex Node;
    }

    /// <summary>A gathered child (before grouping by name). Gathered children of one name form a chain through
    /// <see cref="Next"/> from the first one gathered (the group's head, whose <see cref="Last"/> is the chain's end).</summary>
    private struct Gathered
    {
        public byte* Name;
        public int NameLength;
        public int Source;
        public NodeIndex Node;
        public int Next;  // the next gathered child of this name, −1 at the end
        public int Last;  // heads: the last of the chain; others: −1 (so "is a head" is Last ≥ 0)
        public ulong Hash;
    }

    private readonly struct LargestTotalFirst : IComparer<(ulong Total, int Node)>
    {
        public int Compare((ulong Total, int Node) a, (ulong Total, int Node) b) => b.Total.CompareTo(a.Total);
    }

    /// <summary>The nodes of the sum that the truncation keeps, with their selves (fold included): produced by
    /// <see cref="Select"/> under the sources' locks, written by <see cref="Write"/> after them. Arrays are pooled:
    /// dispose it.</summary>
    private sealed class Selection : IDisposable
    {
        internal SumNode[] Nodes = Pool<SumNode>.Arrays.Rent(256);
        internal int NodeCount;
        internal Member[] Members = Pool<Member>.Arrays.Rent(256);
        internal int MemberCount;
        internal Gathered[] Gather = Pool<Gathered>.Arrays.Rent(256);
        internal int[] Slots = Pool<int>.Arrays.Rent(512); // grouping by name: gathered head + 1, 0 = empty
        internal (ulong Total, int Node)[] Heap = Pool<(ulong, int)>.Arrays.Rent(256);
        internal int HeapCount;
        internal int[] Order = Pool<int>.Arrays.Rent(256);

        public void Dispose()
        {
            Pool<SumNode>.Arrays.Return(Nodes);
            Pool<Member>.Arrays.Return(Members);
            Pool<Gathered>.Arrays.Return(Gather);
            Pool<int>.Arrays.Return(Slots);
            Pool<(ulong, int)>.Arrays.Return(Heap);
            Pool<int>.Arrays.Return(Order);
            Nodes = [];
            Members = [];
            Gather = [];
            Slots = [];
            Heap = [];
            Order = [];
        }
    }

    /// <summary>
    /// Makes <paramref name="target"/> (empty, not among the sources) the sum of <paramref name="sources"/> cut to
    /// <paramref name="maxNodes"/> (≥ 1). Pins every store; takes every source's read lock for the selection (the first
    /// as any read, the others nested: this thread then holds a tree lock, and a nested reader waits only for a writer
    /// holding the lock, never for one waiting — native-notes "Thread-safety contract"); releases them all before
    /// writing the target, so no write waits while this thread holds a read lock. On an exception the target is cleared.
    /// </summary>
    public static void Run(ProfileTree target, ReadOnlySpan<ProfileTree> sources, long maxNodes)
    {
        var stores = new TreeStore[sources.Length];
        var roots = new nint[sources.Length];
        var records = new nint[sources.Length];
        var locked = new bool[sources.Length];
        var from = new Source[sources.Length];
        int pinned = 0;
        Selection? selection = null;
        try
        {
            for (; pinned < sources.Length; pinned++)
            {
                stores[pinned] = sources[pinned].Store;
                roots[pinned] = (nint)stores[pinned].HoldPin();
            }
            try
            {
                for (int i = 0; i < sources.Length; i++)
                {
                    ProfileTree source = sources[i];
                    var root = (StoreRoot*)roots[i];
                    TreeRecord* tree = stores[i].TreeForRead(root, source.RawId, source.Generation);
                    records[i] = (nint)tree;
                    if (!TreeWalker.IsIteratingOnThisThread(tree))
                    {
                        tree->Lock.EnterRead(nested: i > 0 || TreeWalker.HoldsReadLock);
                        locked[i] = true;
                    }
                    tree->ThrowIfStale(source.Generation);
                    from[i] = new Source { Nodes = &tree->Nodes, Symbols = &root->Symbols, Totals = SubtreeTotals.Kept(root, tree) };
                }
                selection = Select(from, maxNodes);
            }
            finally
            {
                for (int i = 0; i < sources.Length; i++)
                {
                    from[i].Totals.Dispose();
                    if (locked[i]) ((TreeRecord*)records[i])->Lock.ExitRead();
                }
            }
            try
            {
                Write(selection, target);
            }
            catch
            {
                target.Clear();
                throw;
            }
        }
        finally
        {
            selection?.Dispose();
            for (int i = 0; i < pinned; i++) stores[i].ReleaseHeldPin();
        }
    }

    /// <summary>Chooses the kept nodes of the sum of <paramref name="sources"/> cut to <paramref name="maxNodes"/>
    /// (≥ 1), as merging them and calling Truncate(maxNodes) would. Throws <see cref="OverflowException"/> when a
    /// total of the sum would pass 2^64 − 1 (as the merge would).</summary>
    private static Selection Select(ReadOnlySpan<Source> sources, long maxNodes)
    {
        var s = new Selection();
        try
        {
            // The root of the sum: every source's root.
            NewNode(s, null, 0);
            ulong total = 0, self = 0;
            for (int i = 0; i < sources.Length; i++)
            {
                AddMember(s, i, NodeIndex.Root);
                total = checked(total + sources[i].Totals[NodeIndex.Root]);
                self = checked(self + (*sources[i].Nodes)[NodeIndex.Root]->Self); // 0 today (no key ends at the root)
            }
            s.Nodes[0].MemberCount = sources.Length;
            s.Nodes[0].Total = total;
            s.Nodes[0].Self = self;
            s.Nodes[0].Kept = true;
            Expand(s, sources, 0);
            PushChildren(s, 0);

            long taken = 0;
            bool cut = false;
            ulong minTotal = 0;
            while (s.HeapCount > 0)
            {
                if (cut && s.Heap[0].Total < minTotal) break;
                int u = Pop(s);
                taken++;
                s.Nodes[u].Kept = true;
                Expand(s, sources, u);
                PushChildren(s, u);
                // The maxNodes-th largest total is the cut, if the sum has more nodes than that (else nothing is cut).
                if (!cut && taken == maxNodes && s.HeapCount > 0)
                {
                    cut = true;
                    minTotal = s.Nodes[u].Total;
                }
            }
            if (cut && minTotal > 0) KeepOtherAndFold(s, sources);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>FoldBelow's rule on the kept set: a child named <c>other</c> of a kept node is kept (with, in turn, its
    /// own <c>other</c> children), and each kept node's dropped children's totals are its fold.</summary>
    private static void KeepOtherAndFold(Selection s, ReadOnlySpan<Source> sources)
    {
        // Kept nodes so far, in the order they are found; `other` children found below are appended and visited too.
        int kept = 0;
        for (int u = 0; u < s.NodeCount; u++)
        {
            if (s.Nodes[u].Kept) AddOrder(s, kept++, u);
        }
        for (int k = 0; k < kept; k++)
        {
            int u = s.Order[k];
            if (s.Nodes[u].FirstChild < 0) Expand(s, sources, u); // an `other` node kept below the cut
            ulong fold = 0;
            int first = s.Nodes[u].FirstChild, end = first + s.Nodes[u].ChildCount;
            for (int c = first; c < end; c++)
            {
                ref SumNode child = ref s.Nodes[c];
                if (!child.Kept && child.IsOther)
                {
                    child.Kept = true;
                    AddOrder(s, kept++, c);
                }
                if (!child.Kept) fold = checked(fold + child.Total); // cannot pass the parent's total
            }
            s.Nodes[u].Fold = fold;
        }
    }

    private static void AddOrder(Selection s, int at, int node)
    {
        if (at == s.Order.Length) Grow(ref s.Order, at + 1);
        s.Order[at] = node;
    }

    /// <summary>Writes the kept nodes into <paramref name="target"/> (an empty tree): each node's path with its self, the
    /// fold added to its <c>other</c> child or inserted as a new <c>other</c> child. Pre-order, so consecutive paths
    /// share their prefix (the insert reuses it).</summary>
    private static void Write(Selection s, ProfileTree target)
    {
        byte[] path = Pool<byte>.Arrays.Rent(1024);
        int[] stack = Pool<int>.Arrays.Rent(64);
        try
        {
            // Iterative pre-order. A node's path is written when it is popped, after its parent's path: every node
            // popped in between lies in the parent's subtree, so the buffer still starts with the parent's path.
            int top = 0;
            Push(ref stack, ref top, 0);
            while (top > 0)
            {
                int u = stack[--top];
                ref SumNode node = ref s.Nodes[u];
                int end = 0;
                if (u != 0)
                {
                    ref SumNode parent = ref s.Nodes[node.Parent];
                    end = Append(ref path, parent.PathEnd, node.Parent != 0, new ReadOnlySpan<byte>(node.Name, node.NameLength));
                    node.PathEnd = end;
                    target.Insert(path.AsSpan(0, end), node.IsOther ? checked(node.Self + parent.Fold) : node.Self);
                }
                bool hasOtherChild = false;
                int first = node.FirstChild, count = node.ChildCount;
                for (int c = first + count - 1; c >= first && first >= 0; c--)
                {
                    if (!s.Nodes[c].Kept) continue;
                    hasOtherChild |= s.Nodes[c].IsOther;
                    Push(ref stack, ref top, c);
                }
                if (node.Fold > 0 && !hasOtherChild)
                    target.Insert(path.AsSpan(0, Append(ref path, end, u != 0, TreeTruncator.OtherName)), node.Fold);
            }
        }
        finally
        {
            Pool<byte>.Arrays.Return(path);
            Pool<int>.Arrays.Return(stack);
        }
    }

    /// <summary>Appends ';' (when the parent is not the root) and <paramref name="name"/> after the first <paramref name="end"/> bytes of
    /// the path buffer (whatever followed them is overwritten); returns the new end.</summary>
    private static int Append(ref byte[] path, int end, bool belowRoot, ReadOnlySpan<byte> name)
    {
        int needed = end + (belowRoot ? 1 : 0) + name.Length;
        if (needed > path.Length)
        {
            byte[] larger = Pool<byte>.Arrays.Rent(Math.Max(needed, path.Length * 2));
            path.AsSpan(0, end).CopyTo(larger);
            Pool<byte>.Arrays.Return(path);
            path = larger;
        }
        // A child of the root starts the path; deeper names follow a ';' (by depth, not by length: a node named ""
        // at depth 1 has an empty path, and its child "b" is ";b").
        int at = end;
        if (belowRoot) path[at++] = (byte)';';
        name.CopyTo(path.AsSpan(at));
        return at + name.Length;
    }

    private static void Push(ref int[] stack, ref int top, int value)
    {
        if (top == stack.Length) Grow(ref stack, top + 1);
        stack[top++] = value;
    }

    /// <summary>Gives node <paramref name="u"/> its children: the members' children grouped by name.</summary>
    private static void Expand(Selection s, ReadOnlySpan<Source> sources, int u)
    {
        int gathered = 0;
        int firstMember = s.Nodes[u].FirstMember, members = s.Nodes[u].MemberCount;
        for (int m = firstMember; m < firstMember + members; m++)
        {
            Member member = s.Members[m];
            ref readonly Source source = ref sources[member.Source];
            NodeSlabs* nodes = source.Nodes;
            for (NodeIndex c = (*nodes)[member.Node]->FirstChild; !c.IsNone; c = (*nodes)[c]->NextSibling)
            {
                if (gathered == s.Gather.Length) Grow(ref s.Gather, gathered + 1);
                ReadOnlySpan<byte> name = source.Symbols->Name((*nodes)[c]->Symbol);
                s.Gather[gathered] = new Gathered
                {
                    Name = (byte*)Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(name)),
                    NameLength = name.Length,
                    Source = member.Source,
                    Node = c,
                    Next = -1,
                    Last = gathered, // a head of its own until grouped
                };
                gathered++;
            }
        }
        // One member's children have distinct names already; several members' are grouped by name in a hash table
        // (sorting them by name compared names O(log n) times each: at 40 members, most of a render's CPU).
        if (members > 1 && gathered > 1) GroupByName(s, gathered);
        int firstChild = s.NodeCount;
        for (int i = 0; i < gathered; i++)
        {
            Gathered g = s.Gather[i];
            if (g.Last < 0) continue; // in the chain of an earlier child of the same name
            ref SumNode child = ref NewNode(s, g.Name, g.NameLength);
            child.Parent = u;
            child.FirstMember = s.MemberCount;
            int count = 0;
            ulong total = 0, self = 0;
            for (int j = i; j >= 0; j = s.Gather[j].Next)
            {
                Gathered h = s.Gather[j];
                AddMember(s, h.Source, h.Node);
                ref readonly Source source = ref sources[h.Source];
                total = checked(total + source.Totals[h.Node]);
                self = checked(self + (*source.Nodes)[h.Node]->Self);
                count++;
            }
            child.MemberCount = count;
            child.Total = total;
            child.Self = self;
            child.IsOther = new ReadOnlySpan<byte>(g.Name, g.NameLength).SequenceEqual(TreeTruncator.OtherName);
        }
        s.Nodes[u].FirstChild = firstChild;
        s.Nodes[u].ChildCount = s.NodeCount - firstChild;
    }

    /// <summary>Chains the first <paramref name="gathered"/> gathered children by name: each name's first child is the
    /// head of its chain (<see cref="Gathered.Last"/> ≥ 0), the others follow it through <see cref="Gathered.Next"/> in
    /// the order gathered. Open addressing over a power-of-two table of at least twice the children (load ≤ 1/2),
    /// keyed by the name's XxHash3 (the symbol table's hash), names compared only when hashes are equal.</summary>
    private static void GroupByName(Selection s, int gathered)
    {
        int size = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, gathered * 2));
        if (s.Slots.Length < size)
        {
            Pool<int>.Arrays.Return(s.Slots);
            s.Slots = Pool<int>.Arrays.Rent(size);
        }
        Span<int> slots = s.Slots.AsSpan(0, size);
        slots.Clear();
        int mask = size - 1;
        for (int i = 0; i < gathered; i++)
        {
            ref Gathered g = ref s.Gather[i];
            var name = new ReadOnlySpan<byte>(g.Name, g.NameLength);
            ulong hash = SymbolTable.Hash(name);
            g.Hash = hash;
            int slot = (int)hash & mask;
            while (true)
            {
                int head = slots[slot] - 1;
                if (head < 0)
                {
                    slots[slot] = i + 1; // a new name: g stays the head of its own chain, as gathered
                    break;
                }
                ref Gathered h = ref s.Gather[head];
                if (h.Hash == hash && new ReadOnlySpan<byte>(h.Name, h.NameLength).SequenceEqual(name))
                {
                    s.Gather[h.Last].Next = i;
                    h.Last = i;
                    g.Last = -1;
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
    }

    private static ref SumNode NewNode(Selection s, byte* name, int nameLength)
    {
        if (s.NodeCount == s.Nodes.Length) Grow(ref s.Nodes, s.NodeCount + 1);
        ref SumNode node = ref s.Nodes[s.NodeCount++];
        node = default;
        node.Name = name;
        node.NameLength = nameLength;
        node.FirstChild = -1;
        return ref node;
    }

    private static void AddMember(Selection s, int source, NodeIndex node)
    {
        if (s.MemberCount == s.Members.Length) Grow(ref s.Members, s.MemberCount + 1);
        s.Members[s.MemberCount++] = new Member { Source = source, Node = node };
    }

    private static void PushChildren(Selection s, int u)
    {
        int first = s.Nodes[u].FirstChild, end = first + s.Nodes[u].ChildCount;
        for (int c = first; c < end; c++)
        {
            if (s.HeapCount == s.Heap.Length) Grow(ref s.Heap, s.HeapCount + 1);
            s.Heap[s.HeapCount] = (s.Nodes[c].Total, c);
            BinaryHeap.SiftUp(s.Heap.AsSpan(0, ++s.HeapCount), s.HeapCount - 1, new LargestTotalFirst());
        }
    }

    private static int Pop(Selection s)
    {
        int u = s.Heap[0].Node;
        s.Heap[0] = s.Heap[--s.HeapCount];
        if (s.HeapCount > 0) BinaryHeap.SiftDown(s.Heap.AsSpan(0, s.HeapCount), 0, new LargestTotalFirst());
        return u;
    }

    private static void Grow<T>(ref T[] array, int needed)
    {
        T[] larger = Pool<T>.Arrays.Rent(Math.Max(needed, array.Length * 2));
        array.AsSpan().CopyTo(larger);
        Pool<T>.Arrays.Return(array, clearArray: RuntimeHelpers.IsReferenceOrContainsReferences<T>());
        array = larger;
    }
}
