using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ProfileArena.Native;

namespace ProfileArena.Engine;

/// <summary>
/// Iterate: depth-first pre-order over every node but the root, siblings in ordinal byte order,
/// with the path of names joined by ';' and each node's self and total.
/// </summary>
/// <remarks>
/// The walk produces an <see cref="IterationPlan"/> (the visit order with names, depths, selves and
/// totals), cached per tree until the next write; Iterate replays it. Building: nodes store only
/// self, so it starts with <see cref="SubtreeTotals"/> (one backward pass over the slabs); children
/// are kept unordered (see <see cref="Node"/>), so each node's children are gathered onto an
/// explicit native stack and sorted there by name, descending so that popping yields them
/// ascending. No recursion (10,000-deep paths are fine) and no managed allocation: the plan, the
/// totals, the stack, the per-depth path lengths and the path bytes are native memory.
/// </remarks>
internal static unsafe class TreeWalker
{
    /// <summary>Trees this thread is iterating, innermost first (frames live on the iterating call's stack).</summary>
    private struct Frame
    {
        public TreeRecord* Tree;
        public Frame* Outer;
    }

    [ThreadStatic] private static Frame* t_innermost;

    /// <summary>True while this thread is inside a visitor: it holds a tree's read lock.</summary>
    public static bool HoldsReadLock => t_innermost != null;

    /// <summary>
    /// The rule that keeps nested calls free of deadlocks: inside a visitor, trees may be read (Iterate,
    /// Top, Total, Save) but not written. A write waits for the tree's readers; if one of them waits in
    /// turn for a lock this thread holds (B's visitor writing A while A's visitor writes B), neither
    /// can go on. Refused at once, whatever tree or store the write is for.
    /// </summary>
    public static void ThrowIfInsideAVisitor(TreeRecord* tree, string what)
    {
        if (t_innermost == null) return;
        throw new InvalidOperationException(IsIteratingOnThisThread(tree)
            ? $"A visitor cannot {what} the tree it is iterating."
            : $"A visitor cannot {what} a tree: while Iterate runs on this thread, trees may be read (Iterate, Top, Total, Save) but not written "
              + "(Insert, MergeFrom into, Clone, Clear, Truncate, Remove), because a write that waits for a tree's readers while this thread holds a "
              + "read lock can deadlock. Collect what to write and write it after Iterate returns.");
    }

    public static bool IsIteratingOnThisThread(TreeRecord* tree)
    {
        for (Frame* f = t_innermost; f != null; f = f->Outer)
            if (f->Tree == tree) return true;
        return false;
    }

    public static void Iterate<TVisitor>(StoreRoot* root, TreeRecord* tree, uint generation, ref TVisitor visitor)
        where TVisitor : IStackVisitor, allows ref struct
    {
        // A visitor may iterate the same tree again (the scope does not take the lock twice); a stale
        // handle to a reused slot throws, even inside a visitor.
        using TreeReadScope locked = TreeReadScope.Enter(tree, generation);
        Frame frame = new() { Tree = tree, Outer = t_innermost };
        t_innermost = &frame;
        IterationPlan* plan = null;
        bool planIsPrivate = false;
        var scratch = new Scratch();
        try
        {
            plan = CurrentPlan(root, tree, out planIsPrivate);
            Replay(plan, ref visitor, ref scratch);
        }
        finally
        {
            t_innermost = frame.Outer;
            scratch.Free();
            if (planIsPrivate) FreePrivatePlan(root, plan);
        }
    }

    /// <summary>
    /// The tree's cached plan if it is current, else a new one, published for the next reader when
    /// possible. <paramref name="isPrivate"/> says the caller must free it (another reader published
    /// first, or the store's budget had no room to keep it, so it lives in process scratch).
    /// </summary>
    private static IterationPlan* CurrentPlan(StoreRoot* root, TreeRecord* tree, out bool isPrivate)
    {
        isPrivate = false;
        ulong version = tree->Lock.Version;
        var cached = (IterationPlan*)Volatile.Read(ref tree->Plan);
        if (cached != null && cached->Version == version) return cached;

        uint count = tree->Nodes.Count - 1;
        nuint bytes = IterationPlan.SizeFor(count);
        IterationPlan* plan = null;
        // A cache must not crowd out inserts: under a budget, keep plans only while the store stays
        // below three quarters of it; reading must not fail for want of a cache either, so otherwise
        // the plan is built as scratch for this call.
        bool charged = root->HasRoomToKeep(bytes);
        if (charged)
        {
            try
            {
                plan = (IterationPlan*)NativeAllocator.Alloc(&root->Memory, bytes, zeroed: false);
            }
            catch (StoreLimitExceededException)
            {
                charged = false;
            }
        }
        if (!charged)
        {
            plan = (IterationPlan*)NativeAllocator.AllocScratch(bytes);
            // The stale plan would only hold memory now: drop it (nobody can be replaying it).
            if (cached != null && Interlocked.CompareExchange(ref tree->Plan, 0, (nint)cached) == (nint)cached)
                IterationPlan.Free(&root->Memory, cached);
        }
        plan->Version = version;
        plan->Count = count;
        plan->Bytes = charged ? bytes : 0; // 0 marks "process scratch, not the store's"
        try
        {
            Build(root, tree, plan);
        }
        catch
        {
            FreePrivatePlan(root, plan, bytes);
            throw;
        }
        if (charged && Interlocked.CompareExchange(ref tree->Plan, (nint)plan, (nint)cached) == (nint)cached)
        {
            IterationPlan.Free(&root->Memory, cached); // stale: nobody can be replaying it
            return plan;
        }
        isPrivate = true;
        return plan;
    }

    private static void FreePrivatePlan(StoreRoot* root, IterationPlan* plan, nuint scratchBytes = 0)
    {
        if (plan == null) return;
        if (plan->Bytes != 0) IterationPlan.Free(&root->Memory, plan);
        else NativeAllocator.FreeScratch(plan, scratchBytes != 0 ? scratchBytes : IterationPlan.SizeFor(plan->Count));
    }

    /// <summary>Visits the plan's entries, rebuilding each path from its parent's (PathEnds per depth).</summary>
    private static void Replay<TVisitor>(IterationPlan* plan, ref TVisitor visitor, ref Scratch s)
        where TVisitor : IStackVisitor, allows ref struct
    {
        PlanEntry* e = plan->Entries;
        s.EnsurePath(plan->MaxPathLength);
        s.EnsureDepth(plan->MaxDepth + 1);
        for (uint i = 0; i < plan->Count; i++, e++)
        {
            int depth = e->Depth;
            int start = depth == 1 ? 0 : s.PathEnds[depth - 1] + 1;
            int end = start + e->NameLength;
            Debug.Assert(end <= s.PathCapacity && depth < s.DepthCapacity);
            if (depth > 1) s.Path[start - 1] = TreeWriter.Separator;
            Unsafe.CopyBlockUnaligned(s.Path + start, e->Name, (uint)e->NameLength);
            s.PathEnds[depth] = end;
            visitor.Visit(new ReadOnlySpan<byte>(s.Path, end), e->Self, e->Total);
        }
    }

    /// <summary>The walk itself: totals, then depth-first with children sorted by name, into the plan.</summary>
    private static void Build(StoreRoot* root, TreeRecord* tree, IterationPlan* plan)
    {
        ref NodeSlabs nodes = ref tree->Nodes;
        ref SymbolTable symbols = ref root->Symbols;
        var s = new Scratch();
        using var totals = new SubtreeTotals(ref nodes);
        try
        {
            Debug.Assert(totals[NodeIndex.Root] == tree->Total);
            PlanEntry* e = plan->Entries;
            int maxDepth = 0, maxPath = 0;
            int top = 0;
            PushChildren(ref nodes, ref symbols, ref s, ref top, NodeIndex.Root, 1);
            while (top > 0)
            {
                ulong entry = s.Stack[--top];
                var index = new NodeIndex((uint)entry);
                int depth = (int)(entry >> 32);
                Node* node = nodes[index];
                ReadOnlySpan<byte> name = symbols.Name(node->Symbol);
                Debug.Assert(e < plan->Entries + plan->Count);
                e->Name = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(name));
                e->NameLength = name.Length;
                e->Depth = depth;
                e->Self = node->Self;
                e->Total = totals[index];
                e++;
                // Path lengths per depth, only to size the replay's buffers once.
                s.EnsureDepth(depth + 1);
                // ≤ MaxStackBytes (≤ 2^30) by the store's invariant; checked anyway, since a wrong
                // length here would size the replay's buffer short.
                int pathLength = checked((depth == 1 ? 0 : s.PathEnds[depth - 1] + 1) + name.Length);
                s.PathEnds[depth] = pathLength;
                maxDepth = Math.Max(maxDepth, depth);
                maxPath = Math.Max(maxPath, pathLength);
                PushChildren(ref nodes, ref symbols, ref s, ref top, index, depth + 1);
            }
            Debug.Assert(e == plan->Entries + plan->Count);
            plan->MaxDepth = maxDepth;
            plan->MaxPathLength = maxPath;
        }
        finally
        {
            s.Free();
        }
    }

    /// <summary>Pushes the children of <paramref name="parent"/> so that the smallest name is on top.</summary>
    private static void PushChildren(ref NodeSlabs nodes, ref SymbolTable symbols, ref Scratch s, ref int top,
        NodeIndex parent, int childDepth)
    {
        int first = top;
        for (NodeIndex c = nodes[parent]->FirstChild; !c.IsNone; c = nodes[c]->NextSibling)
        {
            s.EnsureStack(top + 1);
            s.Stack[top++] = c.Value | ((ulong)(uint)childDepth << 32);
        }
        int count = top - first;
        if (count > 1) SortDescendingByName(ref nodes, ref symbols, s.Stack + first, count);
    }

    /// <summary>Heap sort (no recursion, no allocation) of stack entries by their node's name, descending.</summary>
    private static void SortDescendingByName(ref NodeSlabs nodes, ref SymbolTable symbols, ulong* items, int count)
    {
        fixed (NodeSlabs* n = &nodes)
        fixed (SymbolTable* t = &symbols)
            BinaryHeap.SortDescending(new Span<ulong>(items, count), new ByName(n, t));
    }

    /// <summary>Stack entries ((depth &lt;&lt; 32) | node) by their node's name, ordinal.</summary>
    private readonly struct ByName(NodeSlabs* nodes, SymbolTable* symbols) : IComparer<ulong>
    {
        public int Compare(ulong a, ulong b)
            => symbols->Name(NodeName(a)).SequenceCompareTo(symbols->Name(NodeName(b)));

        private SymbolId NodeName(ulong entry) => (*nodes)[new NodeIndex((uint)entry)]->Symbol;
    }

    /// <summary>Native working memory of one Iterate call, freed when it returns.</summary>
    private struct Scratch
    {
        public ulong* Stack;     // (depth << 32) | node index
        public int StackCapacity;
        public int* PathEnds;    // PathEnds[d] = length of the path of the node at depth d
        public int DepthCapacity;
        public byte* Path;
        public int PathCapacity;

        public void EnsureStack(int n)
        {
            if (n <= StackCapacity) return;
            int capacity = Math.Max(256, Math.Max(n, StackCapacity * 2));
            Stack = (ulong*)NativeAllocator.ReallocScratch(Stack, (nuint)StackCapacity * sizeof(ulong), (nuint)capacity * sizeof(ulong));
            StackCapacity = capacity;
        }

        public void EnsureDepth(int n)
        {
            if (n <= DepthCapacity) return;
            int capacity = Math.Max(64, Math.Max(n, DepthCapacity * 2));
            PathEnds = (int*)NativeAllocator.ReallocScratch(PathEnds, (nuint)DepthCapacity * sizeof(int), (nuint)capacity * sizeof(int));
            DepthCapacity = capacity;
        }

        public void EnsurePath(int n)
        {
            if (n <= PathCapacity) return;
            int capacity = Math.Max(1024, Math.Max(n, PathCapacity * 2));
            Path = (byte*)NativeAllocator.ReallocScratch(Path, (nuint)PathCapacity, (nuint)capacity);
            PathCapacity = capacity;
        }

        public void Free()
        {
            NativeAllocator.FreeScratch(Stack, (nuint)StackCapacity * sizeof(ulong));
            NativeAllocator.FreeScratch(PathEnds, (nuint)DepthCapacity * sizeof(int));
            NativeAllocator.FreeScratch(Path, (nuint)PathCapacity);
            this = default;
        }
    }
}
