using System.Runtime.CompilerServices;
using System.Diagnostics;
using ProfileArena.Native;

namespace ProfileArena.Engine;

/// <summary>
/// The pyroscope-style truncation: fold the smallest subtrees into <c>other</c>. The new node set is
/// built beside the old one and swapped in (<see cref="TreeLifecycle.ReplaceNodes"/>) only when nothing
/// can fail any more, so a refused truncation leaves the tree as it was. Callers hold the tree's write lock.
/// </summary>
internal static unsafe class TreeTruncator
{
    public static ReadOnlySpan<byte> OtherName => "other"u8;

    /// <summary>
    /// The cut for <paramref name="maxNodes"/>: the maxNodes-th largest total among non-root nodes, or 0
    /// when the tree has no more nodes than that (pyroscope's minValue). A min-heap of the best totals
    /// seen so far; a node that does not beat the heap's minimum is skipped with its whole subtree
    /// (a child's total never exceeds its parent's).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per load/verify: skip tier 0
    public static ulong MinTotal(TreeRecord* tree, long maxNodes)
    {
        ref NodeSlabs nodes = ref tree->Nodes;
        if (nodes.Count - 1 <= (ulong)maxNodes) return 0;
        if (maxNodes > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(maxNodes), maxNodes, $"a cut below {nodes.Count - 1} nodes must keep at most {int.MaxValue}");
        int k = (int)maxNodes; // the heap holds k entries
        ulong* totals = TreeWalker.SubtreeTotals(ref nodes, out nuint totalsBytes);
        var heap = (ulong*)NativeAllocator.AllocScratch((nuint)k * sizeof(ulong));
        var stack = (uint*)NativeAllocator.AllocScratch((nuint)nodes.Count * sizeof(uint));
        try
        {
            int size = 0, top = 0;
            for (NodeIndex c = nodes[0]->FirstChild; !c.IsNone; c = nodes[c]->NextSibling) stack[top++] = c.Value;
            while (top > 0)
            {
                uint index = stack[--top];
                ulong total = totals[index];
                if (size == k)
                {
                    if (total <= heap[0]) continue;
                    heap[0] = total;
                    SiftDown(heap, size);
                }
                else
                {
                    int i = size++;
                    while (i > 0 && heap[(i - 1) / 2] > total) { heap[i] = heap[(i - 1) / 2]; i = (i - 1) / 2; }
                    heap[i] = total;
                }
                for (NodeIndex c = nodes[index]->FirstChild; !c.IsNone; c = nodes[c]->NextSibling) stack[top++] = c.Value;
            }
            return size < k ? 0 : heap[0];
        }
        finally
        {
            NativeAllocator.FreeScratch(totals, totalsBytes);
            NativeAllocator.FreeScratch(heap, (nuint)k * sizeof(ulong));
            NativeAllocator.FreeScratch(stack, (nuint)nodes.Count * sizeof(uint));
        }
    }

    private static void SiftDown(ulong* heap, int size)
    {
        int i = 0;
        ulong item = heap[0];
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= size) break;
            if (child + 1 < size && heap[child + 1] < heap[child]) child++;
            if (heap[child] >= item) break;
            heap[i] = heap[child];
            i = child;
        }
        heap[i] = item;
    }

    /// <summary>
    /// Keeps a node when its parent is kept and its total is at least <paramref name="minTotal"/> or its
    /// name is <c>other</c>; the totals of each kept node's dropped children become the self of its
    /// <c>other</c> child (created, or the existing one). Returns the net number of nodes removed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per load/verify: skip tier 0
    public static long FoldBelow(StoreLock storeLock, StoreRoot* root, TreeRecord* tree, ulong minTotal)
    {
        ref NodeSlabs nodes = ref tree->Nodes;
        NativeAllocator* memory = &root->Memory;
        uint count = nodes.Count;
        SymbolId other;
        using (storeLock.Enter()) other = root->Symbols.Find(OtherName, SymbolTable.Hash(OtherName));

        ulong* totals = TreeWalker.SubtreeTotals(ref nodes, out nuint totalsBytes);
        var map = (uint*)NativeAllocator.AllocScratch((nuint)count * sizeof(uint));
        // Path bytes of kept nodes: an `other` child may be longer than the dropped child it replaces
        // (a name shorter than "other"), and every path must stay within MaxStackBytes.
        var pathBytes = (uint*)NativeAllocator.AllocScratch((nuint)count * sizeof(uint));
        try
        {
            // Pass 1: map[i] = new index of kept node i, 0 = dropped. Ascending index order visits a
            // parent before its children, and the new indices keep that order (parent < child).
            map[0] = 0;
            pathBytes[0] = 0;
            uint kept = 1;
            for (uint i = 1; i < count; i++)
            {
                Node* node = nodes[i];
                uint parent = node->Parent.Value;
                bool parentKept = parent == 0 || map[parent] != 0;
                map[i] = parentKept && (totals[i] >= minTotal || node->Symbol == other) ? kept++ : 0;
                // ≤ MaxStackBytes (≤ 2^30) for every node: the store's invariant.
                if (map[i] != 0) pathBytes[i] = (parent == 0 ? 0 : pathBytes[parent] + 1) + (uint)root->Symbols.Name(node->Symbol).Length;
            }
            if (kept == count) return 0; // every node stays

            // Which kept nodes lose children with a value, and whether they already have an `other` child.
            // Flags in the high bits of a second pass over the children lists.
            uint folds = 0;
            bool needOther = false;
            for (uint i = 0; i < count; i++)
            {
                if (i != 0 && map[i] == 0) continue;
                bool dropped = false, hasOther = false;
                for (NodeIndex c = nodes[i]->FirstChild; !c.IsNone; c = nodes[c]->NextSibling)
                {
                    if (map[c.Value] == 0) dropped |= totals[c.Value] > 0;
                    else hasOther |= nodes[c]->Symbol == other;
                }
                if (dropped && !hasOther)
                {
                    long otherPath = (i == 0 ? 0 : pathBytes[i] + 1L) + OtherName.Length;
                    if (otherPath > root->MaxStackBytes) throw TreeWriter.StackTooLong(root, otherPath);
                    folds++;
                    needOther |= other.IsMissing;
                }
            }
            uint result = kept + folds;
            Debug.Assert(result <= count);

            // Pass 2 (may fail; the tree is untouched until the swap): new slabs and index, then the name.
            TreeRecord fresh = default;
            SymbolTable.Checkpoint checkpoint = default;
            bool interned = false;
            try
            {
                fresh.Nodes.EnsureCapacity(memory, result);
                fresh.Edges.EnsureCapacity(memory, ref fresh.Nodes, 0, result);
                if (needOther)
                {
                    using (storeLock.Enter())
                    {
                        checkpoint = root->Symbols.Save();
                        try
                        {
                            other = root->Symbols.FindOrAdd(memory, OtherName, root->MaxSymbolBytes);
                            root->Symbols.Commit(memory);
                        }
                        catch
                        {
                            root->Symbols.Rollback(memory, checkpoint);
                            throw;
                        }
                        interned = true;
                    }
                }
            }
            catch
            {
                fresh.Nodes.Free(memory);
                fresh.Edges.Free(memory);
                if (interned) using (storeLock.Enter()) root->Symbols.Rollback(memory, checkpoint);
                throw;
            }

            // Pass 3 (cannot fail): copy kept nodes, link them, then add the `other` nodes.
            ref NodeSlabs to = ref fresh.Nodes;
            to.Count = result;
            *to[0] = *nodes[0];
            to[0]->FirstChild = NodeIndex.None;
            to[0]->NextInBucket = NodeIndex.None;
            for (uint i = 1; i < count; i++)
            {
                uint ni = map[i];
                if (ni == 0) continue;
                Node* node = nodes[i];
                Node* copy = to[ni];
                Node* parent = to[map[node->Parent.Value]];
                *copy = default;
                copy->Self = node->Self;
                copy->Symbol = node->Symbol;
                copy->Parent = new NodeIndex(map[node->Parent.Value]);
                copy->NextSibling = parent->FirstChild;
                parent->FirstChild = new NodeIndex(ni);
            }
            uint next = kept;
            for (uint i = 0; i < count; i++)
            {
                if (i != 0 && map[i] == 0) continue;
                ulong folded = 0;
                uint otherChild = 0;
                for (NodeIndex c = nodes[i]->FirstChild; !c.IsNone; c = nodes[c]->NextSibling)
                {
                    if (map[c.Value] == 0) folded += totals[c.Value];
                    else if (nodes[c]->Symbol == other) otherChild = map[c.Value];
                }
                if (folded == 0) continue;
                if (otherChild != 0)
                {
                    to[otherChild]->Self += folded;
                    continue;
                }
                Node* parent = to[map[i]];
                Node* o = to[next];
                *o = default;
                o->Self = folded;
                o->Symbol = other;
                o->Parent = new NodeIndex(map[i]);
                o->NextSibling = parent->FirstChild;
                parent->FirstChild = new NodeIndex(next);
                next++;
            }
            Debug.Assert(next == result);
            for (uint i = 1; i < result; i++) fresh.Edges.Add(ref to, new NodeIndex(i));

            TreeLifecycle.ReplaceNodes(root, tree, ref fresh);
            Interlocked.Add(ref root->NodeCount, -(long)(count - result));
            return (long)count - result;
        }
        finally
        {
            NativeAllocator.FreeScratch(totals, totalsBytes);
            NativeAllocator.FreeScratch(map, (nuint)count * sizeof(uint));
            NativeAllocator.FreeScratch(pathBytes, (nuint)count * sizeof(uint));
        }
    }
}
