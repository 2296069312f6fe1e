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
    public uint LiveTrees;      // slots with Live = 1
    public uint FreeTreeHead;   // removed slots, reused by CreateTree: slot + 1, 0 = none
    public uint ReadOnly;       // 1 for a store opened from a mapped snapshot: every write throws
    public uint SymbolsVerified; // mapped snapshots: 1 once symbols and names passed their checks
    public byte* MapBase;       // mapped snapshots: the mapping (owned by the StoreHandle's managed view)
    public long MapLength;
    public Snapshots.SectionHeader MappedSymbols, MappedRuns, MappedNames; // verified on first use

    public static StoreRoot* Create(TreeStoreOptions options, bool internEmptyName = true)
    {
        var bootstrap = new NativeAllocator { Budget = options.MaxNativeBytes };
        var root = (StoreRoot*)NativeAllocator.Alloc(&bootstrap, (nuint)sizeof(StoreRoot));
        root->Memory = bootstrap;
        root->MaxNodes = options.MaxNodes;
        root->MaxSymbolBytes = options.MaxSymbolBytes;
        root->MaxStackBytes = options.MaxStackBytes;
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
