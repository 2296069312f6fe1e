using ProfileArena.Engine;
using ProfileArena.Native;

namespace ProfileArena;

/// <summary>
/// Owns profiling trees whose nodes, names and indexes live in native memory, outside the GC heap.
/// The managed heap holds three objects per store (this, its SafeHandle and its symbol lock)
/// however many trees, nodes and names it holds.
/// </summary>
/// <remarks>
/// Dispose frees all native memory deterministically; a store that is never disposed is freed by
/// its handle's finalizer. After Dispose every member of the store and of its tree handles throws
/// <see cref="ObjectDisposedException"/>. Thread safety: see native-notes.md — any number of
/// readers and one writer per tree may run concurrently; Dispose may race with both.
/// </remarks>
public sealed unsafe class TreeStore : IDisposable
{
    private readonly StoreHandle _handle;
    // Guards the symbol table's hash slots (finds and interning) and tree creation. Held only for
    // the name lookups of an insert, never for its node work, so writers on different trees
    // overlap everywhere else.
    private readonly Lock _symbolLock = new();
    private volatile bool _disposed;

    /// <summary>Creates an empty store with no caps.</summary>
    public TreeStore() : this(new TreeStoreOptions()) { }

    /// <summary>Creates an empty store with the given caps.</summary>
    public TreeStore(TreeStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _handle = new StoreHandle(StoreRoot.Create(options.MaxNodes, options.MaxSymbolBytes, options.MaxNativeBytes));
    }

    /// <summary>Number of trees created in this store.</summary>
    public int TreeCount
    {
        get
        {
            StoreRoot* root = Enter();
            try { return (int)Volatile.Read(ref root->TreeCount); }
            finally { Exit(); }
        }
    }

    /// <summary>Nodes in all trees of the store, each tree's root included.</summary>
    public long NodeCount
    {
        get
        {
            StoreRoot* root = Enter();
            try { return Volatile.Read(ref root->NodeCount); }
            finally { Exit(); }
        }
    }

    /// <summary>Distinct frame names interned by the store (the empty name included).</summary>
    public long SymbolCount
    {
        get
        {
            StoreRoot* root = Enter();
            try { return root->Symbols.Count; }
            finally { Exit(); }
        }
    }

    /// <summary>Bytes currently held from NativeMemory by this store.</summary>
    public long NativeBytes
    {
        get
        {
            StoreRoot* root = Enter();
            try { return Volatile.Read(ref root->Memory.Bytes); }
            finally { Exit(); }
        }
    }

    /// <summary>Bytes held from NativeMemory by every store of this process (and by Iterate calls in flight).
    /// Unlike instance members it stays readable after stores are disposed: it is how a caller checks that
    /// disposal or finalization returned the memory.</summary>
    public static long ProcessNativeBytes => NativeAllocator.ProcessBytes;

    /// <summary>Creates an empty tree (just its root) in this store.</summary>
    /// <exception cref="StoreLimitExceededException">The store's node cap or tree id space is full.</exception>
    public ProfileTree CreateTree()
    {
        StoreRoot* root = Enter();
        try
        {
            lock (_symbolLock)
            {
                uint id = root->TreeCount;
                if (id >= int.MaxValue)
                    throw new StoreLimitExceededException(StoreLimit.TreeIdSpace, int.MaxValue, "the store holds the most trees its ids can address");
                long after = Interlocked.Increment(ref root->NodeCount);
                try
                {
                    if (after > root->MaxNodes)
                        throw new StoreLimitExceededException(StoreLimit.Nodes, root->MaxNodes,
                            $"a new tree's root would take the store to {after} nodes, over TreeStoreOptions.MaxNodes = {root->MaxNodes}");
                    root->Trees.EnsureCapacity(&root->Memory, (ulong)id + 1);
                    TreeRecord* tree = root->Trees[id];
                    *tree = default;
                    try
                    {
                        tree->Init(&root->Memory);
                    }
                    catch
                    {
                        tree->Free(&root->Memory);
                        throw;
                    }
                }
                catch
                {
                    Interlocked.Decrement(ref root->NodeCount);
                    throw;
                }
                Volatile.Write(ref root->TreeCount, id + 1);
                return new ProfileTree(this, id);
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Interns <paramref name="name"/> (benchmarks and importers): returns its symbol id.</summary>
    internal uint InternSymbol(ReadOnlySpan<byte> name)
    {
        StoreRoot* root = Enter();
        try
        {
            lock (_symbolLock)
                return root->Symbols.FindOrAdd(&root->Memory, name, root->MaxSymbolBytes).Value;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Looks <paramref name="name"/> up without interning it: its symbol id, or -1.</summary>
    internal long FindSymbol(ReadOnlySpan<byte> name)
    {
        StoreRoot* root = Enter();
        try
        {
            lock (_symbolLock)
            {
                SymbolId id = root->Symbols.Find(name, SymbolTable.Hash(name));
                return id.IsMissing ? -1 : id.Value;
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Frees all native memory of the store. Idempotent; calls in flight on other threads finish first.</summary>
    public void Dispose()
    {
        _disposed = true;
        _handle.Dispose();
    }

    /// <summary>
    /// Pins the native memory for the duration of one call: the handle's reference count keeps
    /// ReleaseHandle from running until the matching <see cref="Exit"/>.
    /// </summary>
    internal StoreRoot* Enter()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        bool added = false;
        _handle.DangerousAddRef(ref added); // throws ObjectDisposedException if Dispose won the race
        return _handle.Root;
    }

    internal void Exit() => _handle.DangerousRelease();

    internal Lock SymbolLock => _symbolLock;

    internal static TreeRecord* Tree(StoreRoot* root, uint id)
    {
        if (id >= Volatile.Read(ref root->TreeCount))
            throw new ArgumentException($"Tree id {id} does not exist in this store.");
        return root->Tree(id);
    }
}
