using System.Diagnostics;
using ProfileArena.Native;

namespace ProfileArena.Engine;

/// <summary>
/// MergeFrom: adds every value of a source tree into a target tree, as if the source's inserts
/// were replayed, within one store or across stores (names re-interned).
/// </summary>
/// <remarks>
/// Works on node indices in ascending order, which visits every parent before its children
/// (invariant: a node's index is greater than its parent's), with a scratch map from source index
/// to target index. Three passes, like Insert: (1) maps existing nodes (adding their selves, undone if
/// pass 2 is refused) and counts the new ones; (2) the room and the missing names are claimed, all or
/// nothing; (3) the new nodes are created with their selves — which cannot fail. Totals need no work:
/// they are derived from selves. Across stores, names are mapped through <see cref="MergeMaps"/>, which
/// a <see cref="TreeMergeSession"/> keeps for every tree it merges from one source store.
/// </remarks>
internal static unsafe class TreeMerger
{
    private static NodeIndex New => new(uint.MaxValue);        // map entry: target node still to create (never a node: see TreeRecord.MaxNodes)

    public static void Merge(StoreLock targetStoreLock, StoreRoot* targetRoot, TreeRecord* target, uint targetGeneration,
        StoreRoot* sourceRoot, TreeRecord* source, uint sourceGeneration, ref MergeMaps maps)
    {
        if (target == source)
        {
            using var _ = TreeWriteScope.Enter(target, targetGeneration, "merge into");
            DoubleInPlace(target);
            return;
        }
        using var locks = TreeMergeScope.Enter(target, targetGeneration, source, sourceGeneration);
        MergeLocked(targetStoreLock, targetRoot, target, sourceRoot, source, ref maps);
    }

    /// <summary>
    /// Throws unless every path of the source fits the target store's MaxStackBytes and MaxStackFrames.
    /// One pass in ascending index (parents first) with each node's path length and depth in scratch.
    /// </summary>
    private static void CheckStackBounds(StoreRoot* sourceRoot, ref NodeSlabs from, StoreRoot* targetRoot)
    {
        uint count = from.Count;
        nuint bytes = (nuint)count * sizeof(ulong);
        var paths = (ulong*)NativeAllocator.AllocScratch(bytes); // (depth << 32) | path bytes
        try
        {
            paths[0] = 0;
            for (uint i = 1; i < count; i++)
            {
                Node* node = from[new NodeIndex(i)];
                ulong parent = paths[node->Parent.Value];
                long length = (node->Parent.IsNone ? 0 : (long)(uint)parent + 1) + sourceRoot->Symbols.Name(node->Symbol).Length;
                long depth = (long)(parent >> 32) + 1;
                if (length > targetRoot->MaxStackBytes) throw TreeWriter.StackTooLong(targetRoot, length);
                if (depth > targetRoot->MaxStackFrames) throw TreeWriter.TooManyFrames(targetRoot, depth);
                paths[i] = ((ulong)depth << 32) | (ulong)length;
            }
        }
        finally
        {
            NativeAllocator.FreeScratch(paths, bytes);
        }
    }

    private static void DoubleInPlace(TreeRecord* tree)
    {
        ref NodeSlabs nodes = ref tree->Nodes;
        ulong total = tree->Total;
        if (total > ulong.MaxValue - total)
            throw new OverflowException($"Merging the tree into itself would overflow its total of {total}; the tree is unchanged.");
        for (uint i = 0; i < nodes.Count; i++) nodes[new NodeIndex(i)]->Self *= 2;
        tree->Total = total * 2;
    }

    private static void MergeLocked(StoreLock targetStoreLock, StoreRoot* targetRoot, TreeRecord* target, StoreRoot* sourceRoot, TreeRecord* source, ref MergeMaps maps)
    {
        ref NodeSlabs from = ref source->Nodes;
        ref NodeSlabs into = ref target->Nodes;
        ulong added = source->Total;
        if (target->Total > ulong.MaxValue - added)
            throw new OverflowException($"Merging a tree with total {added} would overflow the target's total of {target->Total}; the target is unchanged.");

        uint count = from.Count;
        bool sameStore = sourceRoot == targetRoot;
        if (into.Count == 1 && count > 1)
        {
            CopyIntoEmpty(targetStoreLock, targetRoot, target, sourceRoot, source, ref maps);
            return;
        }
        NodeIndex* map = maps.NodeMap(count); // source node → target node, or New
        long created = 0;
        bool selvesAdded = false;
        try
        {
            MapNamesAndCheckBounds(targetStoreLock, targetRoot, sourceRoot, ref from, ref maps);

            // Pass 1: map what exists and add its self at once (the node was just read by the edge lookup; a refused
            // pass 2 subtracts it again, under the same write lock, so nobody sees it), count what must be created.
            map[0] = NodeIndex.Root;
            for (uint i = 1; i < count; i++)
            {
                Node* node = from[new NodeIndex(i)];
                Debug.Assert(node->Parent.Value < i, "parent index must be below child index");
                NodeIndex parent = map[node->Parent.Value];
                NodeIndex mapped = New;
                if (parent != New)
                {
                    SymbolId symbol = sameStore ? node->Symbol : maps.Mapped(node->Symbol);
                    if (!symbol.IsMissing)
                    {
                        NodeIndex existing = target->Edges.Find(ref into, parent, symbol);
                        if (!existing.IsNone)
                        {
                            mapped = existing;
                            into[existing]->Self += node->Self;
                        }
                    }
                }
                map[i] = mapped;
                if (mapped == New) created++;
            }
            selvesAdded = true; // (pass 1 cannot throw)

            // Pass 2: claim room and names, all or nothing.
            ClaimRoomAndNames(targetStoreLock, targetRoot, target, sourceRoot, created, ref maps);
        }
        catch
        {
            maps.ForgetPending(); // names queued but not interned must not stay Missing for a later merge
            if (selvesAdded)
            {
                for (uint i = 1; i < count; i++)
                {
                    if (map[i] != New) into[map[i]]->Self -= from[new NodeIndex(i)]->Self;
                }
            }
            throw;
        }

        // Pass 3: create the new nodes with their selves. Nothing below can fail.
        into[NodeIndex.Root]->Self += from[NodeIndex.Root]->Self; // always 0 today (no key ends at the root), kept for exactness
        target->Total += added;
        if (created == 0) return;
        for (uint i = 1; i < count; i++)
        {
            if (map[i] != New) continue;
            Node* node = from[new NodeIndex(i)];
            SymbolId symbol = sameStore ? node->Symbol : maps.Mapped(node->Symbol);
            NodeIndex child = target->AddChild(map[node->Parent.Value], symbol);
            into[child]->Self = node->Self;
            map[i] = child;
        }
    }

    /// <summary>
    /// The merge into a tree that holds only its root (a query's fresh tree, <c>Clone</c>): no node can exist yet, so
    /// there is nothing to look up — every source node becomes the node of the same index, its links copied as they
    /// are (<see cref="TreeRecord.AppendCopy"/>), only its name mapped and its edge-index entry added. The same result
    /// as the general path (the same nodes, names and selves; sibling order is not part of a tree), in one sequential
    /// pass instead of a lookup per node and a child-list insert per new node (perf/README "Copying into an empty
    /// tree"). Names and room are claimed first, all or nothing, exactly as the general path does.
    /// </summary>
    private static void CopyIntoEmpty(StoreLock targetStoreLock, StoreRoot* targetRoot, TreeRecord* target, StoreRoot* sourceRoot, TreeRecord* source, ref MergeMaps maps)
    {
        ref NodeSlabs from = ref source->Nodes;
        ref NodeSlabs into = ref target->Nodes;
        Debug.Assert(into.Count == 1 && into[NodeIndex.Root]->FirstChild.IsNone, "an empty target: its root only");
        uint count = from.Count;
        bool sameStore = sourceRoot == targetRoot;
        try
        {
            MapNamesAndCheckBounds(targetStoreLock, targetRoot, sourceRoot, ref from, ref maps);
            ClaimRoomAndNames(targetStoreLock, targetRoot, target, sourceRoot, count - 1, ref maps);
        }
        catch
        {
            maps.ForgetPending(); // as the general path: queued names must not stay Missing for a later merge
            throw;
        }

        // Nothing below can fail.
        for (uint i = 1; i < count; i++)
        {
            Node* node = from[new NodeIndex(i)];
            target->AppendCopy(node, sameStore ? node->Symbol : maps.Mapped(node->Symbol));
        }
        Node* root = into[NodeIndex.Root];
        root->FirstChild = from[NodeIndex.Root]->FirstChild;
        root->Self += from[NodeIndex.Root]->Self;
        target->Total += source->Total;
    }

    /// <summary>Step 1 of every merge: across stores, every source name of the tree gets its target id (or Missing: to
    /// intern) in the maps' symbol map, which a session keeps from one merge to the next (only names not met before are
    /// hashed); and a source from a store with looser stack bounds is checked for paths this store refuses.</summary>
    private static void MapNamesAndCheckBounds(StoreLock targetStoreLock, StoreRoot* targetRoot, StoreRoot* sourceRoot, ref NodeSlabs from, ref MergeMaps maps)
    {
        if (sourceRoot != targetRoot) ResolveNames(targetStoreLock, targetRoot, sourceRoot, ref from, ref maps);
        if (sourceRoot->MaxStackBytes > targetRoot->MaxStackBytes || sourceRoot->MaxStackFrames > targetRoot->MaxStackFrames)
            CheckStackBounds(sourceRoot, ref from, targetRoot);
    }

    /// <summary>Claims room for <paramref name="created"/> nodes, then interns the queued names, all or nothing (a refused
    /// interning gives the room back; the caller forgets the queued names).</summary>
    private static void ClaimRoomAndNames(StoreLock targetStoreLock, StoreRoot* targetRoot, TreeRecord* target, StoreRoot* sourceRoot, long created, ref MergeMaps maps)
    {
        TreeRecord.Room room = created > 0 ? target->ReserveNodes(targetRoot, created) : default;
        if (maps.Pending.IsEmpty) return;
        try
        {
            InternPending(targetStoreLock, targetRoot, sourceRoot, ref maps);
        }
        catch
        {
            if (created > 0) target->CancelReservation(targetRoot, created, room);
            throw;
        }
    }

    /// <summary>
    /// Gives every name of the source tree an entry in the symbol map: its target id, or Missing (queued in the
    /// maps' pending list, interned by pass 2). Names already mapped (by an earlier merge of the session) cost a
    /// read; the target's store lock is taken only when the tree holds a name not met before, and then once.
    /// </summary>
    private static void ResolveNames(StoreLock targetStoreLock, StoreRoot* targetRoot, StoreRoot* sourceRoot, ref NodeSlabs from, ref MergeMaps maps)
    {
        uint count = from.Count;
        maps.Cover(sourceRoot->Symbols.Count); // every id a node of this tree holds is below the count (committed first)
        uint i = 1;
        for (; i < count; i++)
        {
            if (maps.Entry(from[new NodeIndex(i)]->Symbol) == MergeMaps.Unmapped) break;
        }
        if (i == count) return;
        using (targetStoreLock.Enter())
        {
            for (; i < count; i++)
            {
                SymbolId s = from[new NodeIndex(i)]->Symbol;
                ref SymbolId entry = ref maps.Entry(s);
                if (entry != MergeMaps.Unmapped) continue;
                ReadOnlySpan<byte> name = sourceRoot->Symbols.Name(s);
                entry = targetRoot->Symbols.Find(name, SymbolTable.Hash(name));
                if (entry.IsMissing) maps.AddPending(s);
            }
        }
    }

    /// <summary>Interns the queued names in the target store, all or nothing (a refusal rolls the batch back and
    /// unmaps the queued names again, so the map never holds a rolled-back id).</summary>
    private static void InternPending(StoreLock targetStoreLock, StoreRoot* targetRoot, StoreRoot* sourceRoot, ref MergeMaps maps)
    {
        using (targetStoreLock.Enter())
        {
            SymbolTable.Checkpoint checkpoint = targetRoot->Symbols.Save();
            try
            {
                foreach (uint s in maps.Pending)
                {
                    var source = new SymbolId(s);
                    maps.Entry(source) = targetRoot->Symbols.FindOrAdd(&targetRoot->Memory, sourceRoot->Symbols.Name(source), targetRoot->MaxSymbolBytes);
                }
                targetRoot->Symbols.Commit(&targetRoot->Memory);
            }
            catch
            {
                targetRoot->Symbols.Rollback(&targetRoot->Memory, checkpoint); // the caller unmaps the queued names
                throw;
            }
        }
        maps.ClearPending();
    }
}
