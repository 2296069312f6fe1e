using ProfileArena.Engine;
using ProfileArena.Native;
using ProfileArena.Snapshots;

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
    // Non-null exactly for a store opened from a mapped snapshot file (read-only): its mapping and
    // what has been verified so far. Writes check it; reads verify through it on first use.
    private readonly MappedSnapshot? _mapped;
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

    private TreeStore(StoreHandle handle, MappedSnapshot? mapped = null)
    {
        _handle = handle;
        _mapped = mapped;
    }

    /// <summary>Number of trees in this store: created (or loaded) and not removed.</summary>
    public int TreeCount
    {
        get
        {
            using StorePin pin = Pin();
            return pin.LiveTreeCount;
        }
    }

    /// <summary>Nodes in all trees of the store, each tree's root included.</summary>
    public long NodeCount
    {
        get
        {
            using StorePin pin = Pin();
            return pin.TotalNodes;
        }
    }

    /// <summary>Distinct frame names interned by the store (the empty name included).</summary>
    public long SymbolCount
    {
        get
        {
            using StorePin pin = Pin();
            _mapped?.EnsureSymbolsVerified(pin.Root, _storeLock);
            return StoreSymbols.Count(pin.Root);
        }
    }

    /// <summary>Bytes of the distinct frame names interned by the store (the sum of their lengths: what
    /// <see cref="TreeStoreOptions.MaxSymbolBytes"/> caps). Names are never freed before the store: removing,
    /// clearing or truncating trees leaves them, so a store whose names churn can compare this with the names
    /// its live trees use and rebuild itself (copy the live trees into a new store with
    /// <see cref="ProfileTree.MergeFrom(ProfileTree)"/>, which interns only the names they use).</summary>
    public long SymbolBytes
    {
        get
        {
            using StorePin pin = Pin();
            _mapped?.EnsureSymbolsVerified(pin.Root, _storeLock);
            return StoreSymbols.NameBytes(pin.Root);
        }
    }

    /// <summary>Bytes currently held from NativeMemory by this store.</summary>
    public long NativeBytes
    {
        get
        {
            using StorePin pin = Pin();
            return pin.HeldBytes;
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
        ThrowIfReadOnly();
        uint id = TreeLifecycle.Create(_storeLock, pin.Root, out uint generation);
        return new ProfileTree(this, id, generation);
    }

    /// <summary>Interns <paramref name="name"/> (benchmarks and importers): returns its symbol id.</summary>
    internal uint InternSymbol(ReadOnlySpan<byte> name)
    {
        using StorePin pin = Pin();
        ThrowIfReadOnly();
        return StoreSymbols.Intern(_storeLock, pin.Root, name);
    }

    /// <summary>Looks <paramref name="name"/> up without interning it: its symbol id, or -1.</summary>
    internal long FindSymbol(ReadOnlySpan<byte> name)
    {
        using StorePin pin = Pin();
        _mapped?.EnsureSymbolsVerified(pin.Root, _storeLock);
        return StoreSymbols.Find(_storeLock, pin.Root, name);
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
        HoldPin();
        return new StorePin(_handle);
    }

    /// <summary>
    /// A pin for a call that holds several stores at once (a <see cref="StorePin"/> is a ref struct and cannot sit in
    /// an array): adds the reference and returns the root; the caller calls <see cref="ReleaseHeldPin"/> once for each.
    /// </summary>
    internal StoreRoot* HoldPin()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        bool added = false;
        _handle.DangerousAddRef(ref added); // throws ObjectDisposedException if Dispose won the race
        return _handle.Root;
    }

    /// <summary>Releases a reference taken by <see cref="HoldPin"/>.</summary>
    internal void ReleaseHeldPin() => _handle.DangerousRelease();

    internal StoreLock StoreLock => _storeLock;

    /// <summary>
    /// The record of tree <paramref name="id"/> for a write: refused on a read-only store, then the
    /// plain lookup (<see cref="StoreRoot.LiveTree"/>). This is what every Insert does before its lock.
    /// </summary>
    internal TreeRecord* TreeForWrite(in StorePin pin, uint id, uint generation)
    {
        ThrowIfReadOnly();
        return pin.LiveTree(id, generation);
    }

    /// <summary>
    /// The record of tree <paramref name="id"/> for a read. For a store opened from a snapshot file this
    /// is where the file is checked and the tree's node section verified, once, before anything reads it.
    /// The caller then takes the tree's lock and re-checks the generation under it.
    /// </summary>
    internal TreeRecord* TreeForRead(in StorePin pin, uint id, uint generation) => TreeForRead(pin.Root, id, generation);

    /// <summary>As <see cref="TreeForRead(in StorePin, uint, uint)"/>, for a root held by <see cref="HoldPin"/>.</summary>
    internal TreeRecord* TreeForRead(StoreRoot* root, uint id, uint generation)
    {
        TreeRecord* tree = root->LiveTree(id, generation);
        _mapped?.EnsureTreeVerified(root, _storeLock, id, tree);
        return tree;
    }

    private void ThrowIfReadOnly()
    {
        if (_mapped != null)
            ThrowHelper.ReadOnlyStore();
    }
}
