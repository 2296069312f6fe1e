namespace ProfileArena.Native;

/// <summary>
/// The single native block a <see cref="StoreHandle"/> owns; every other native allocation of the
/// store is reachable from it, so freeing it (Dispose or finalizer) frees everything.
/// </summary>
internal unsafe struct StoreRoot
{
    public NativeAllocator Memory;
    public SymbolTable Symbols;
    public SlabList<TreeRecord> Trees;
    public uint TreeCount;
    public long NodeCount;      // all trees, roots included; reserved before nodes are created
    public long MaxNodes;
    public long MaxSymbolBytes;
    public int MaxStackBytes;   // every root-to-node path of every tree fits (TreeStoreOptions.MaxStackBytes)
    public int MaxStackFrames;  // … and has at most this many names
    public bool KeepSubtreeTotals; // TreeStoreOptions.KeepSubtreeTotals
    public uint LiveTrees;      // slots with Live = 1
    public uint FreeTreeHead;   // removed slots, reused by CreateTree: slot + 1, 0 = none
    // A store opened from a mapped snapshot keeps its mapping and verification state outside this
    // record (Snapshots.MappedSnapshot, held by the TreeStore): Native knows nothing of snapshots.

    public static StoreRoot* Create(TreeStoreOptions options, bool internEmptyName = true)
    {
        var bootstrap = new NativeAllocator { Budget = options.MaxNativeBytes };
        var root = (StoreRoot*)NativeAllocator.Alloc(&bootstrap, (nuint)sizeof(StoreRoot));
        root->Memory = bootstrap;
        root->MaxNodes = options.MaxNodes;
        root->MaxSymbolBytes = options.MaxSymbolBytes;
        root->MaxStackBytes = options.MaxStackBytes;
        root->KeepSubtreeTotals = options.KeepSubtreeTotals;
        root->MaxStackFrames = options.MaxStackFrames;
        try
        {
            if (internEmptyName) root->Symbols.Init(&root->Memory);
        }
        catch
        {
            Destroy(root);
            throw;
        }
        return root;
    }

    public TreeRecord* Tree(uint id) => Trees[id];

    /// <summary>Whether a read may keep a cache block of <paramref name="bytes"/> (an iteration plan, kept subtree totals)
    /// charged to the store: a cache must not crowd out inserts, so under a budget only while the store stays below three
    /// quarters of it.</summary>
    public bool HasRoomToKeep(nuint bytes)
    {
        long budget = Memory.Budget;
        return budget == long.MaxValue || Volatile.Read(ref Memory.Bytes) + (long)bytes <= budget / 4 * 3;
    }

    // Accessors the public facade reads through (it never touches this record's fields itself).

    /// <summary>Slots with a live tree (read without a lock: one aligned word).</summary>
    public int LiveTreeCount => (int)Volatile.Read(ref LiveTrees);

    /// <summary>Nodes of all trees, roots included.</summary>
    public long TotalNodes => Volatile.Read(ref NodeCount);

    /// <summary>Bytes held from NativeMemory by this store.</summary>
    public long HeldBytes => Volatile.Read(ref Memory.Bytes);

    /// <summary>Tree slots ever handed out (live or removed): ids below it address a record.</summary>
    public uint SlotCount => Volatile.Read(ref TreeCount);

    /// <summary>
    /// The record of tree <paramref name="id"/> for a handle of <paramref name="generation"/>: the lookup
    /// every call makes, nothing else. Throws for an id never handed out and for a handle whose tree
    /// was removed; the caller re-checks staleness under the tree's lock (Remove may run after this
    /// lookup; the record stays valid memory until the store is freed).
    /// </summary>
    public TreeRecord* LiveTree(uint id, uint generation)
    {
        if (id >= Volatile.Read(ref TreeCount))
            ThrowHelper.NoSuchTree(id);
        TreeRecord* tree = Trees[id];
        if (Volatile.Read(ref tree->Live) == 0 || tree->Generation != generation)
            tree->ThrowIfStale(generation);
        return tree;
    }

    /// <summary>True when slot <paramref name="id"/> holds a live tree; its generation then.</summary>
    public bool TryGetLive(uint id, out uint generation)
    {
        generation = 0;
        if (id >= Volatile.Read(ref TreeCount)) return false;
        TreeRecord* tree = Trees[id];
        if (Volatile.Read(ref tree->Live) == 0) return false;
        generation = Volatile.Read(ref tree->Generation);
        return true;
    }

    /// <summary>Frees every allocation of the store, then the root block itself. Never throws.</summary>
    public static void Destroy(StoreRoot* root)
    {
        NativeAllocator* memory = &root->Memory;
        for (uint t = 0; t < root->TreeCount; t++) root->Trees[t]->Free(memory);
        root->Trees.Free(memory);
        root->Symbols.Free(memory);
        NativeAllocator.ReleasePool(memory);
        var last = root->Memory; // the root block is charged to its own counter
        NativeAllocator.Free(&last, root, (nuint)sizeof(StoreRoot));
    }
}
