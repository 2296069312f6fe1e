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
/// to target index. Three passes, like Insert: (1) a dry run maps existing nodes and counts the new
/// ones; (2) the room and the missing names are claimed, all or nothing; (3) nodes are created and
/// selves added — which cannot fail. Totals need no work: they are derived from selves.
/// </remarks>
internal static unsafe class TreeMerger
{
    private static NodeIndex New => new(uint.MaxValue);        // map entry: target node still to create (never a node: see TreeRecord.MaxNodes)
    private static SymbolId Unmapped => new(uint.MaxValue - 1); // symbol map entry: not looked up yet (never an id: see SymbolTable.Add)

    public static void Merge(StoreLock targetStoreLock, StoreRoot* targetRoot, TreeRecord* target, uint targetGeneration,
        StoreRoot* sourceRoot, TreeRecord* source, uint sourceGeneration)
    {
        if (target == source)
        {
            using var _ = TreeWriteScope.Enter(target, targetGeneration, "merge into");
            DoubleInPlace(target);
            return;
        }
        using var locks = TreeMergeScope.Enter(target, targetGeneration, source, sourceGeneration);
        MergeLocked(targetStoreLock, targetRoot, target, sourceRoot, source);
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

    private static void MergeLocked(StoreLock targetStoreLock, StoreRoot* targetRoot, TreeRecord* target, StoreRoot* sourceRoot, TreeRecord* source)
    {
        ref NodeSlabs from = ref source->Nodes;
        ref NodeSlabs into = ref target->Nodes;
        ulong added = source->Total;
        if (target->Total > ulong.MaxValue - added)
            throw new OverflowException($"Merging a tree with total {added} would overflow the target's total of {target->Total}; the target is unchanged.");

        uint count = from.Count;
        bool sameStore = sourceRoot == targetRoot;
        // Across stores, source names map to target names. Indexed by source symbol when the source store's
        // symbol table is not much larger than the tree (each distinct name looked up once); indexed by source
        // node when it is (a small tree of a big store — a query merging one bucket of a shard — must not pay
        // to fill a map of the whole store's symbols on every merge: work stays proportional to the tree).
        uint symbolCount = sameStore ? 0 : sourceRoot->Symbols.Count;
        bool perNode = !sameStore && symbolCount > 4uL * count;
        uint symbolSlots = perNode ? count : symbolCount;
        nuint mapBytes = (nuint)count * (nuint)sizeof(NodeIndex), symbolMapBytes = (nuint)symbolSlots * (nuint)sizeof(SymbolId);
        var map = (NodeIndex*)NativeAllocator.AllocScratch(mapBytes); // source node → target node, or New
        // Source symbol (or source node, per node) → target symbol, Missing (to intern) or Unmapped.
        var symbolMap = sameStore ? null : (SymbolId*)NativeAllocator.AllocScratch(Math.Max(symbolMapBytes, 1));
        try
        {
            bool anyUnknownName = false;
            if (!sameStore)
            {
                new Span<SymbolId>(symbolMap, (int)symbolSlots).Fill(Unmapped);
                using (targetStoreLock.Enter())
                {
                    for (uint i = 1; i < count; i++)
                    {
                        SymbolId s = from[new NodeIndex(i)]->Symbol;
                        uint slot = perNode ? i : s.Value;
                        if (symbolMap[slot] != Unmapped) continue;
                        ReadOnlySpan<byte> name = sourceRoot->Symbols.Name(s);
                        symbolMap[slot] = targetRoot->Symbols.Find(name, SymbolTable.Hash(name));
                        anyUnknownName |= symbolMap[slot].IsMissing;
                    }
                }
            }

            // A source from a store with looser stack bounds may hold paths this store refuses.
            if (sourceRoot->MaxStackBytes > targetRoot->MaxStackBytes || sourceRoot->MaxStackFrames > targetRoot->MaxStackFrames)
                CheckStackBounds(sourceRoot, ref from, targetRoot);

            // Pass 1: map what exists, count what must be created.
            long created = 0;
            map[0] = NodeIndex.Root;
            for (uint i = 1; i < count; i++)
            {
                Node* node = from[new NodeIndex(i)];
                Debug.Assert(node->Parent.Value < i, "parent index must be below child index");
                NodeIndex parent = map[node->Parent.Value];
                SymbolId symbol = sameStore ? node->Symbol : symbolMap[perNode ? i : node->Symbol.Value];
                NodeIndex mapped = New;
                if (parent != New && !symbol.IsMissing)
                {
                    NodeIndex existing = target->Edges.Find(ref into, parent, symbol);
                    if (!existing.IsNone) mapped = existing;
                }
                map[i] = mapped;
                if (mapped == New) created++;
            }

            // Pass 2: claim room and names, all or nothing.
            TreeRecord.Room room = created > 0 ? target->ReserveNodes(targetRoot, created) : default;
            if (anyUnknownName)
            {
                try
                {
                    using (targetStoreLock.Enter())
                    {
                        SymbolTable.Checkpoint checkpoint = targetRoot->Symbols.Save();
                        try
                        {
                            for (uint slot = 0; slot < symbolSlots; slot++)
                            {
                                if (!symbolMap[slot].IsMissing) continue;
                                // Per node, a name several nodes share is added by the first and found by the rest.
                                SymbolId s = perNode ? from[new NodeIndex(slot)]->Symbol : new SymbolId(slot);
                                symbolMap[slot] = targetRoot->Symbols.FindOrAdd(&targetRoot->Memory, sourceRoot->Symbols.Name(s), targetRoot->MaxSymbolBytes);
                            }
                            targetRoot->Symbols.Commit(&targetRoot->Memory);
                        }
                        catch
                        {
                            targetRoot->Symbols.Rollback(&targetRoot->Memory, checkpoint);
                            throw;
                        }
                    }
                }
                catch
                {
                    if (created > 0) target->CancelReservation(targetRoot, created, room);
                    throw;
                }
            }

            // Pass 3: create and add. Nothing below can fail.
            into[NodeIndex.Root]->Self += from[NodeIndex.Root]->Self; // always 0 today (no key ends at the root), kept for exactness
            target->Total += added;
            for (uint i = 1; i < count; i++)
            {
                Node* node = from[new NodeIndex(i)];
                if (map[i] == New)
                {
                    SymbolId symbol = sameStore ? node->Symbol : symbolMap[perNode ? i : node->Symbol.Value];
                    map[i] = target->AddChild(map[node->Parent.Value], symbol);
                }
                into[map[i]]->Self += node->Self;
            }
        }
        finally
        {
            NativeAllocator.FreeScratch(map, mapBytes);
            if (symbolMap != null) NativeAllocator.FreeScratch(symbolMap, Math.Max(symbolMapBytes, 1));
        }
    }
}
