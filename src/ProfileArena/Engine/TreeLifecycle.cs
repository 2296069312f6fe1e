using ProfileArena.Native;

namespace ProfileArena.Engine;

/// <summary>
/// A tree slot's life: Create (a fresh root in a new or reused slot), Clear (back to the root), Remove
/// (free everything, retire the handle's generation), and the one step they and Truncate share:
/// <see cref="ReplaceNodes"/>, which swaps a node set built beside the old one into the record.
/// </summary>
/// <remarks>
/// Slots and generations: a <see cref="ProfileTree"/> is (store, slot, generation). Remove frees the
/// slot's nodes, edge index, path cache and plan, clears Live, increments the generation and pushes the
/// slot on the store's free list (under the store lock); Create pops a free slot first. Records never
/// move and are freed with the store, so a stale handle always reads valid memory and is refused by
/// <see cref="TreeRecord.ThrowIfStale"/> under the tree's lock. A slot whose generation reaches
/// 2^32 − 1 retires instead of being reused, so a generation never wraps back to an old handle's.
/// </remarks>
internal static unsafe class TreeLifecycle
{
    /// <summary>A new tree (just its root) in a reused or new slot; returns its id and generation.</summary>
    public static uint Create(StoreLock storeLock, StoreRoot* root, out uint generation)
    {
        long after = Interlocked.Increment(ref root->NodeCount); // the new root, claimed before it exists
        try
        {
            if (after > root->MaxNodes)
                throw new StoreLimitExceededException(StoreLimit.Nodes, root->MaxNodes,
                    $"a new tree's root would take the store to {after} nodes, over TreeStoreOptions.MaxNodes = {root->MaxNodes}");
            uint id = ClaimSlot(storeLock, root);
            TreeRecord* tree = root->Trees[id];
            // Initialised outside the store lock (no lock is taken while holding another one but
            // "tree, then symbols"): a stale handle may still be spinning on a reused slot's lock,
            // so it is taken, and the stale caller then sees the new generation.
            tree->Lock.EnterWrite();
            try
            {
                Reset(root, tree); // the slot holds no nodes: removed (freed) or never used (zeroed)
                tree->NextFree = 0;
                Volatile.Write(ref tree->Live, 1);
            }
            catch
            {
                using (storeLock.Enter()) // give the slot back
                {
                    tree->NextFree = root->FreeTreeHead;
                    root->FreeTreeHead = id + 1;
                }
                throw;
            }
            finally
            {
                tree->Lock.ExitWrite();
            }
            Interlocked.Increment(ref root->LiveTrees);
            generation = tree->Generation;
            return id;
        }
        catch
        {
            Interlocked.Decrement(ref root->NodeCount);
            throw;
        }
    }

    /// <summary>Takes a slot off the free list, or appends a zeroed record (published with Live = 0).</summary>
    private static uint ClaimSlot(StoreLock storeLock, StoreRoot* root)
    {
        using (storeLock.Enter())
        {
            if (root->FreeTreeHead != 0)
            {
                uint reused = root->FreeTreeHead - 1;
                root->FreeTreeHead = root->Trees[reused]->NextFree;
                return reused;
            }
            uint id = root->TreeCount;
            if (id >= int.MaxValue)
                throw new StoreLimitExceededException(StoreLimit.TreeIdSpace, int.MaxValue, "the store holds the most trees its ids can address");
            root->Trees.EnsureCapacity(&root->Memory, (ulong)id + 1);
            *root->Trees[id] = default;
            Volatile.Write(ref root->TreeCount, id + 1);
            return id;
        }
    }

    /// <summary>Clear: every node but the root goes, their memory with them; the total becomes 0. Caller holds the write lock.</summary>
    public static void Clear(StoreRoot* root, TreeRecord* tree)
    {
        uint before = tree->Nodes.Count;
        Reset(root, tree);
        Interlocked.Add(ref root->NodeCount, -(long)(before - tree->Nodes.Count));
    }

    /// <summary>
    /// The record reset Create and Clear share: a root-only node set replaces the record's nodes, total 0.
    /// Does not count nodes in the store (Create claimed its root before; Clear gives back the difference).
    /// </summary>
    private static void Reset(StoreRoot* root, TreeRecord* tree)
    {
        NativeAllocator* memory = &root->Memory;
        TreeRecord fresh = default;
        try
        {
            fresh.Init(memory);
        }
        catch (StoreLimitExceededException)
        {
            // The budget is full: free the old nodes first (that always leaves room for one root), then start again.
            fresh.Free(memory);
            tree->Nodes.Free(memory);
            tree->Edges.Free(memory);
            fresh = default;
            fresh.Init(memory);
        }
        ReplaceNodes(root, tree, ref fresh);
        tree->Total = 0;
    }

    /// <summary>
    /// Swaps <paramref name="fresh"/>'s nodes and edge index into the tree (built beside the old ones,
    /// so everything that could fail has run) and frees the old ones. The path cache is invalidated (node
    /// indices changed; its arrays are kept); the cached plan is rebuilt after the write section, whose
    /// exit bumps the lock's version. Caller holds the write lock and adjusts the store's node count.
    /// </summary>
    public static void ReplaceNodes(StoreRoot* root, TreeRecord* tree, ref TreeRecord fresh)
    {
        NativeAllocator* memory = &root->Memory;
        tree->Nodes.Free(memory);
        tree->Edges.Free(memory);
        tree->Nodes = fresh.Nodes;
        tree->Edges = fresh.Edges;
        tree->Cache.Valid = false;
    }

    /// <summary>Remove: frees the tree's memory, retires the handle's generation, gives the slot back for reuse.</summary>
    public static void Remove(StoreLock storeLock, StoreRoot* root, TreeRecord* tree, uint id, uint generation)
    {
        uint count;
        bool retire;
        using (TreeWriteScope.Enter(tree, generation, "remove"))
        {
            count = tree->Nodes.Count;
            tree->Free(&root->Memory);
            tree->Total = 0;
            Volatile.Write(ref tree->Live, 0);
            // After 2^32 reuses a slot retires instead of wrapping its generation back to an old handle's.
            retire = tree->Generation == uint.MaxValue;
            tree->Generation++;
        }
        Interlocked.Add(ref root->NodeCount, -count);
        Interlocked.Decrement(ref root->LiveTrees);
        if (!retire)
        {
            using (storeLock.Enter())
            {
                tree->NextFree = root->FreeTreeHead;
                root->FreeTreeHead = id + 1;
            }
        }
    }
}
