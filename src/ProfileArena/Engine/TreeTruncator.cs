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
    /// The cut for <paramref name="maxNodes"/>: the maxNodes-th largest total among non-root nodes (pyroscope's
    /// minValue). The caller (<c>ProfileTree.Truncate</c>) calls it only when the tree has more non-root nodes than
    /// that; a tree whose totals are all 0 gives 0. The best totals seen so far are
    /// kept in a bounded min-heap (<see cref="LargestValues"/>) over a depth-first walk; a node that does
    /// not beat the heap's minimum is skipped with its whole subtree (a child's total never exceeds its
    /// parent's).
    /// </summary>
    /// <param name="tree">The tree (its write lock held).</param>
    /// <param name="maxNodes">Nodes to keep.</param>
    /// <param name="totals">The tree's subtree totals, as they are now.</param>
    public static ulong MinTotal(TreeRecord* tree, long maxNodes, in SubtreeTotals totals)
    {
        ref NodeSlabs nodes = ref tree->Nodes;
        if (maxNodes > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(maxNodes), maxNodes, $"a cut below {nodes.Count - 1} nodes must keep at most {int.MaxValue}");
        using var best = new LargestValues((int)maxNodes);
        nuint stackBytes = (nuint)nodes.Count * (nuint)sizeof(NodeIndex);
        var stack = (NodeIndex*)NativeAllocator.AllocScratch(stackBytes);
        try
        {
            int top = 0;
            for (NodeIndex c = nodes[NodeIndex.Root]->FirstChild; !c.IsNone; c = nodes[c]->NextSibling) stack[top++] = c;
            while (top > 0)
            {
                NodeIndex index = stack[--top];
                ulong total = totals[index];
                if (best.IsFull && total <= best.Min) continue;
                best.Offer(total);
                for (NodeIndex c = nodes[index]->FirstChild; !c.IsNone; c = nodes[c]->NextSibling) stack[top++] = c;
            }
            return best.IsFull ? best.Min : 0;
        }
        finally
        {
            NativeAllocator.FreeScratch(stack, stackBytes);
        }
    }

    /// <summary>
    /// Keeps a node when its parent is kept and its total is at least <paramref name="minTotal"/> or its
    /// name is <c>other</c>; the totals of each kept node's dropped children become the self of its
    /// <c>other</c> child (created, or the existing one). Returns the net number of nodes removed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // one call loops over every node: skip tier 0 and OSR
    public static long FoldBelow(StoreLock storeLock, StoreRoot* root, TreeRecord* tree, ulong minTotal, in SubtreeTotals totals)
    {
        ref NodeSlabs nodes = ref tree->Nodes;
        NativeAllocator* memory = &root->Memory;
        uint count = nodes.Count;
        SymbolId other;
        using (storeLock.Enter()) other = root->Symbols.Find(OtherName, SymbolTable.Hash(OtherName));

        nuint mapBytes = (nuint)count * (nuint)sizeof(NodeIndex), pathBytesBytes = (nuint)count * sizeof(uint);
        // map[i] = the new index of kept node i; None = dropped (the root is kept and stays 0).
        var map = (NodeIndex*)NativeAllocator.AllocScratch(mapBytes);
        // Path bytes of kept nodes: an `other` child may be longer than the dropped child it replaces
        // (a name shorter than "other"), and every path must stay within MaxStackBytes.
        var pathBytes = (uint*)NativeAllocator.AllocScratch(pathBytesBytes);
        try
        {
            // Pass 1: map the kept nodes. Ascending index order visits a parent before its children,
            // and the new indices keep that order (parent < child).
            map[0] = NodeIndex.Root;
            pathBytes[0] = 0;
            uint kept = 1;
            for (uint i = 1; i < count; i++)
            {
                var index = new NodeIndex(i);
                Node* node = nodes[index];
                NodeIndex parent = node->Parent;
                bool parentKept = parent.IsNone || !map[parent.Value].IsNone;
                map[i] = parentKept && (totals[index] >= minTotal || node->Symbol == other) ? new NodeIndex(kept++) : NodeIndex.None;
                // ≤ MaxStackBytes (≤ 2^30) for every node: the store's invariant.
                if (!map[i].IsNone) pathBytes[i] = (parent.IsNone ? 0 : pathBytes[parent.Value] + 1) + (uint)root->Symbols.Name(node->Symbol).Length;
            }
            if (kept == count) return 0; // every node stays

            // Which kept nodes lose children with a value, and whether they already have an `other` child.
            uint folds = 0;
            bool needOther = false;
            for (uint i = 0; i < count; i++)
            {
                if (i != 0 && map[i].IsNone) continue;
                bool dropped = false, hasOther = false;
                for (NodeIndex c = nodes[new NodeIndex(i)]->FirstChild; !c.IsNone; c = nodes[c]->NextSibling)
                {
                    if (map[c.Value].IsNone) dropped |= totals[c] > 0;
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
            Node* newRoot = to[NodeIndex.Root];
            *newRoot = *nodes[NodeIndex.Root];
            newRoot->FirstChild = NodeIndex.None;
            newRoot->NextInBucket = NodeIndex.None;
            for (uint i = 1; i < count; i++)
            {
                NodeIndex ni = map[i];
                if (ni.IsNone) continue;
                Node* node = nodes[new NodeIndex(i)];
                NodeIndex newParent = map[node->Parent.Value];
                Node* copy = to[ni];
                Node* parent = to[newParent];
                *copy = default;
                copy->Self = node->Self;
                copy->Symbol = node->Symbol;
                copy->Parent = newParent;
                copy->NextSibling = parent->FirstChild;
                parent->FirstChild = ni;
            }
            uint next = kept;
            for (uint i = 0; i < count; i++)
            {
                if (i != 0 && map[i].IsNone) continue;
                ulong folded = 0;
                NodeIndex otherChild = NodeIndex.None;
                for (NodeIndex c = nodes[new NodeIndex(i)]->FirstChild; !c.IsNone; c = nodes[c]->NextSibling)
                {
                    if (map[c.Value].IsNone) folded += totals[c];
                    else if (nodes[c]->Symbol == other) otherChild = map[c.Value];
                }
                if (folded == 0) continue;
                if (!otherChild.IsNone)
                {
                    to[otherChild]->Self += folded;
                    continue;
                }
                Node* parent = to[map[i]];
                var added = new NodeIndex(next++);
                Node* o = to[added];
                *o = default;
                o->Self = folded;
                o->Symbol = other;
                o->Parent = map[i];
                o->NextSibling = parent->FirstChild;
                parent->FirstChild = added;
            }
            Debug.Assert(next == result);
            for (uint i = 1; i < result; i++) fresh.Edges.Add(ref to, new NodeIndex(i));

            TreeLifecycle.ReplaceNodes(root, tree, ref fresh);
            Interlocked.Add(ref root->NodeCount, -(long)(count - result));
            return (long)count - result;
        }
        finally
        {
            NativeAllocator.FreeScratch(map, mapBytes);
            NativeAllocator.FreeScratch(pathBytes, pathBytesBytes);
        }
    }
}
