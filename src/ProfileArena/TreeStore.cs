using ProfileArena.Engine;
using ProfileArena.Native;

namespace ProfileArena;

/// <summary>
/// Owns profiling trees whose nodes, names and indexes live in native memory, outside the GC heap.
/// The managed heap holds three objects per store (this, its SafeHandle and its store lock)
/// however many trees, nodes and names it holds.
/// </summary>
/// <remarks>
/// Dispose frees all native memory deterministically; a store that is never disposed is freed by
/// its handle's finalizer. After Dispose every member of the store and of its tree handles throws
/// <see cref="ObjectDisposedException"/>. Thread safety: see native-notes.md — any number of
/// readers and one writer per tree may run concurrently; Dispose may race with both.
/// </remarks>
public sealed unsafe partial class TreeStore : IDisposable
{
    private readonly StoreHandle _handle;
    // Guards the store-wide state: names, the tree list and its free list, mapped-snapshot
    // verification. What each lock guards is written once, on StoreLock.
    private readonly StoreLock _storeLock = StoreLock.Create();
    private volatile bool _disposed;

    /// <summary>Creates an empty store with no caps.</summary>
    public TreeStore() : this(new TreeStoreOptions()) { }

    /// <summary>Creates an empty store with the given caps.</summary>
    public TreeStore(TreeStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _handle = new StoreHandle(StoreRoot.Create(options));
    }

    private TreeStore(StoreHandle handle) => _handle = handle;

    /// <summary>Number of trees in this store: created (or loaded) and not removed.</summary>
    public int TreeCount
    {
        get
        {
            using StorePin pin = Pin();
            StoreRoot* root = pin.Root;
            return (int)Volatile.Read(ref root->LiveTrees);
        }
    }

    /// <summary>Nodes in all trees of the store, each tree's root included.</summary>
    public long NodeCount
    {
        get
        {
            using StorePin pin = Pin();
            StoreRoot* root = pin.Root;
            return Volatile.Read(ref root->NodeCount);
        }
    }

    /// <summary>Distinct frame names interned by the store (the empty name included).</summary>
    public long SymbolCount
    {
        get
        {
            using StorePin pin = Pin();
            StoreRoot* root = pin.Root;
            EnsureSymbolsVerified(root);
            return root->Symbols.Count;
        }
    }

    /// <summary>Bytes currently held from NativeMemory by this store.</summary>
    public long NativeBytes
    {
        get
        {
            using StorePin pin = Pin();
            StoreRoot* root = pin.Root;
            return Volatile.Read(ref root->Memory.Bytes);
        }
    }

    /// <summary>Bytes held from NativeMemory by every store of this process (and by Iterate calls in flight).
    /// Unlike instance members it stays readable after stores are disposed: it is how a caller checks that
    /// disposal or finalization returned the memory.</summary>
    public static long ProcessNativeBytes => NativeAllocator.ProcessBytes;

    /// <summary>Creates an empty tree (just its root) in this store. Reuses the slot of a removed tree
    /// when there is one (with a new generation, so old handles to it stay invalid).</summary>
    /// <exception cref="StoreLimitExceededException">The store's node cap or tree id space is full.</exception>
    /// <exception cref="InvalidOperationException">The store was opened read-only from a snapshot file.</exception>
    public ProfileTree CreateTree()
    {
        using StorePin pin = Pin();
        StoreRoot* root = pin.Root;
        ThrowIfReadOnly(root);
        long after = Interlocked.Increment(ref root->NodeCount);
        try
        {
            if (after > root->MaxNodes)
                throw new StoreLimitExceededException(StoreLimit.Nodes, root->MaxNodes,
                    $"a new tree's root would take the store to {after} nodes, over TreeStoreOptions.MaxNodes = {root->MaxNodes}");
            uint id = ClaimSlot(root);
            TreeRecord* tree = root->Trees[id];
            // Initialised outside the store lock (no lock is taken while holding another one but
            // "tree, then symbols"): a stale handle may still be spinning on a reused slot's lock,
            // so it is taken, and the stale caller then sees the new generation.
            tree->Lock.EnterWrite();
            try
            {
                TreeRecord fresh = default;
                try
                {
                    fresh.Init(&root->Memory);
                }
                catch
                {
                    fresh.Free(&root->Memory);
                    throw;
                }
                tree->Total = 0;
                tree->Nodes = fresh.Nodes;
                tree->Edges = fresh.Edges;
                tree->Cache = fresh.Cache;
                tree->NextFree = 0;
                Volatile.Write(ref tree->Live, 1);
            }
            catch
            {
                using (_storeLock.Enter()) // give the slot back
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
            return new ProfileTree(this, id, tree->Generation);
        }
        catch
        {
            Interlocked.Decrement(ref root->NodeCount);
            throw;
        }
    }

    /// <summary>Takes a slot off the free list, or appends a zeroed record (published with Live = 0).</summary>
    private uint ClaimSlot(StoreRoot* root)
    {
        using (_storeLock.Enter())
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

    /// <summary>Interns <paramref name="name"/> (benchmarks and importers): returns its symbol id.</summary>
    internal uint InternSymbol(ReadOnlySpan<byte> name)
    {
        using StorePin pin = Pin();
        StoreRoot* root = pin.Root;
        ThrowIfReadOnly(root);
        using (_storeLock.Enter())
            return root->Symbols.FindOrAdd(&root->Memory, name, root->MaxSymbolBytes).Value;
    }

    /// <summary>Looks <paramref name="name"/> up without interning it: its symbol id, or -1.</summary>
    internal long FindSymbol(ReadOnlySpan<byte> name)
    {
        using StorePin pin = Pin();
        StoreRoot* root = pin.Root;
        EnsureSymbolsVerified(root);
        using (_storeLock.Enter())
        {
            if (!root->Symbols.HasIndex) root->Symbols.BuildIndex(&root->Memory); // a mapped snapshot's first lookup
            SymbolId id = root->Symbols.Find(name, SymbolTable.Hash(name));
            return id.IsMissing ? -1 : id.Value;
        }
    }

    /// <summary>Frees all native memory of the store. Idempotent; calls in flight on other threads finish first.</summary>
    public void Dispose()
    {
        _disposed = true;
        _handle.Dispose();
    }

    /// <summary>
    /// Pins the native memory for the duration of one call (<c>using StorePin pin = store.Pin();</c>):
    /// the handle's reference count keeps ReleaseHandle from running until the pin is disposed.
    /// </summary>
    internal StorePin Pin()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        bool added = false;
        _handle.DangerousAddRef(ref added); // throws ObjectDisposedException if Dispose won the race
        return new StorePin(_handle);
    }

    internal StoreLock StoreLock => _storeLock;

    /// <summary>
    /// The record of slot <paramref name="id"/>. The caller then takes the tree's lock and calls
    /// <see cref="TreeRecord.ThrowIfStale"/> (Remove may run between this lookup and the lock; the
    /// record itself stays valid memory until the store is freed). For a store opened from a snapshot
    /// file this is where the tree's node section is verified, once, before anything reads it.
    /// </summary>
    internal TreeRecord* Tree(StoreRoot* root, uint id, uint generation, bool write = false)
    {
        if (write) ThrowIfReadOnly(root);
        if (id >= Volatile.Read(ref root->TreeCount))
            ThrowHelper.NoSuchTree(id);
        TreeRecord* tree = root->Tree(id);
        if (Volatile.Read(ref tree->Live) == 0 || tree->Generation != generation)
            tree->ThrowIfStale(generation);
        if (root->MapBase != null)
        {
            CheckMappedFile(root); // a file changed under the mapping would fault or lie: refuse first
            if (Volatile.Read(ref tree->Verified) == 0) VerifyMappedTree(root, tree);
        }
        return tree;
    }

    internal static void ThrowIfReadOnly(StoreRoot* root)
    {
        if (root->ReadOnly != 0)
            ThrowHelper.ReadOnlyStore();
    }
}
