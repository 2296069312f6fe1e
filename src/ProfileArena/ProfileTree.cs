using System.Buffers;
using System.Text;
using ProfileArena.Engine;
using ProfileArena.Native;

namespace ProfileArena;

/// <summary>
/// A handle to one tree of a <see cref="TreeStore"/>: the store and a 32-bit tree id. Copying it is free;
/// all copies refer to the same tree. A default handle refers to no tree and throws on use.
/// </summary>
public readonly unsafe partial struct ProfileTree : IEquatable<ProfileTree>
{
    private readonly TreeStore? _store;
    private readonly uint _id;
    private readonly uint _generation;

    internal ProfileTree(TreeStore store, uint id, uint generation)
    {
        _store = store;
        _id = id;
        _generation = generation;
    }

    /// <summary>The store that owns this tree.</summary>
    /// <exception cref="InvalidOperationException">This is a default handle.</exception>
    public TreeStore Store
    {
        get
        {
            if (_store is null) ThrowHelper.DefaultTreeHandle();
            return _store;
        }
    }

    /// <summary>The tree's id within its store.</summary>
    /// <exception cref="InvalidOperationException">This is a default handle.</exception>
    public int Id
    {
        get
        {
            _ = Store; // a default handle has no id: throws like every other member
            return (int)_id;
        }
    }

    internal uint RawId => _id;

    /// <summary>Tests only: the tree lock's state (−1 = write-held, else readers) and waiting writers.</summary>
    internal (int State, int WaitingWriters) LockStateForTests
    {
        get
        {
            TreeStore store = Store;
            using StorePin pin = store.Pin();
            return store.TreeForRead(pin, _id, _generation)->LockStateForTests;
        }
    }

    /// <summary>Tests only: sets the tree's write version as if that many writes had happened (wrap-around tests).</summary>
    internal void SetWriteVersionForTests(ulong version)
    {
        TreeStore store = Store;
        using StorePin pin = store.Pin();
        store.TreeForRead(pin, _id, _generation)->SetLockVersionForTests(version);
    }

    /// <summary>The generation of the tree's slot in its store: when a tree is removed and a later tree reuses its
    /// <see cref="Id"/>, the two handles differ in it (so (id, generation) names one tree for the store's life).</summary>
    /// <exception cref="InvalidOperationException">This is a default handle.</exception>
    public uint Generation
    {
        get
        {
            _ = Store;
            return _generation;
        }
    }

    /// <summary>
    /// A counter of this tree's write sections (insert, merge into, truncate, clear; a refused write counts too):
    /// while it reads the same value, the tree holds the same contents. It only grows, also across the reuse of a
    /// removed tree's id by a later tree of the same store, so (id, version) never names two different states of one
    /// store. Read it <em>before</em> reading the tree: a write that lands in between leaves the contents read newer
    /// than the version, never older (server storage caches merged trees keyed by it; native-notes.md).
    /// </summary>
    /// <exception cref="InvalidOperationException">This is a default handle, or the tree was removed.</exception>
    /// <exception cref="ObjectDisposedException">The store is disposed.</exception>
    public ulong WriteVersion
    {
        get
        {
            TreeStore store = Store;
            using StorePin pin = store.Pin();
            return store.TreeForRead(pin, _id, _generation)->ReadVersion(_generation);
        }
    }

    /// <summary>
    /// Adds <paramref name="value"/> along the path named by <paramref name="key"/>: frame names separated by
    /// ';' (no escaping; empty names are kept). Every node on the path, root included, gains value in total;
    /// the last node also gains it in self. Value 0 still creates the path.
    /// </summary>
    /// <exception cref="OverflowException">The tree's total would pass 2^64 − 1; the tree is unchanged.</exception>
    /// <exception cref="StoreLimitExceededException">A cap would be passed; the store is unchanged.</exception>
    public void Insert(ReadOnlySpan<byte> key, ulong value)
    {
        TreeStore store = Store;
        using StorePin pin = store.Pin();
        TreeWriter.Insert(store.StoreLock, pin.Root, store.TreeForWrite(pin, _id, _generation), _generation, key, value);
    }

    /// <summary>Inserts a key given as a string, encoded as UTF-8 (unpaired surrogates become U+FFFD).</summary>
    public void Insert(string key, ulong value)
    {
        ArgumentNullException.ThrowIfNull(key);
        int max = Encoding.UTF8.GetMaxByteCount(key.Length);
        if (max <= 1024)
        {
            Span<byte> buffer = stackalloc byte[max];
            Insert(buffer[..Encoding.UTF8.GetBytes(key, buffer)], value);
            return;
        }
        byte[] rented = ArrayPool<byte>.Shared.Rent(max);
        try
        {
            Insert(rented.AsSpan(0, Encoding.UTF8.GetBytes(key, rented)), value);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Adds every value of <paramref name="source"/> into this tree, exactly as if the source's inserts
    /// had been made here. The source may belong to another store (its names are interned into this
    /// one) or be this tree itself (every value doubles). All or nothing: on an exception this tree
    /// and its store are unchanged.
    /// </summary>
    /// <exception cref="OverflowException">This tree's total would pass 2^64 − 1.</exception>
    /// <exception cref="StoreLimitExceededException">A cap of this tree's store would be passed.</exception>
    public void MergeFrom(ProfileTree source)
    {
        var maps = new MergeMaps();
        try
        {
            MergeFrom(source, ref maps);
        }
        finally
        {
            maps.Free();
        }
    }

    /// <summary>One merge with <paramref name="maps"/> (a one-off, or a <see cref="TreeMergeSession"/>'s).</summary>
    internal void MergeFrom(ProfileTree source, ref MergeMaps maps)
    {
        TreeStore store = Store;
        TreeStore sourceStore = source.Store;
        using StorePin pin = store.Pin();
        using StorePin sourcePin = sourceStore.Pin();
        TreeMerger.Merge(store.StoreLock, pin.Root, store.TreeForWrite(pin, _id, _generation), _generation,
            sourcePin.Root, sourceStore.TreeForRead(sourcePin, source._id, source._generation), source._generation, ref maps);
    }

    /// <summary>
    /// Starts merging many trees of <paramref name="source"/> into this tree: the returned session maps each
    /// source name to this store's name once and reuses the mapping for every tree it merges, where
    /// <see cref="MergeFrom(ProfileTree)"/> looks every name up again (a query merging dozens of bucket trees of
    /// one shard store pays for each distinct name once). Dispose it when done (it holds process scratch).
    /// </summary>
    /// <exception cref="InvalidOperationException">This is a default handle.</exception>
    /// <exception cref="ObjectDisposedException">Either store is disposed.</exception>
    public TreeMergeSession BeginMerge(TreeStore source)
    {
        ArgumentNullException.ThrowIfNull(source);
        TreeStore store = Store;
        using StorePin pin = store.Pin();      // both stores are live now (each Merge pins them again)
        using StorePin sourcePin = source.Pin();
        return new TreeMergeSession(this, source);
    }

    /// <summary>
    /// A new tree in the same store with the same contents. If a cap stops the copy, the exception
    /// propagates and the new tree is left empty.
    /// </summary>
    public ProfileTree Clone()
    {
        ProfileTree copy = Store.CreateTree();
        copy.MergeFrom(this);
        return copy;
    }

    /// <summary>Sum of all values inserted into the tree (the root's total).</summary>
    public ulong Total
    {
        get
        {
            TreeStore store = Store;
            using StorePin pin = store.Pin();
            return store.TreeForRead(pin, _id, _generation)->ReadTotal(_generation);
        }
    }

    /// <summary>Nodes in the tree, root included.</summary>
    public long NodeCount
    {
        get
        {
            TreeStore store = Store;
            using StorePin pin = store.Pin();
            return store.TreeForRead(pin, _id, _generation)->ReadNodeCount(_generation);
        }
    }

    /// <summary>Calls <paramref name="visitor"/> for every node but the root, depth-first pre-order,
    /// siblings in ordinal byte order. The visitor may read any tree (Iterate, Top, Total, Save) but
    /// must not write one: Insert, MergeFrom, Clone, Clear, Truncate and Remove called from a visitor
    /// throw <see cref="InvalidOperationException"/> (a write waiting for readers while this thread
    /// holds a read lock could deadlock).</summary>
    public void Iterate(StackVisitor visitor)
    {
        ArgumentNullException.ThrowIfNull(visitor);
        var adapter = new DelegateVisitor(visitor);
        Iterate(ref adapter);
    }

    /// <summary>Like <see cref="Iterate(StackVisitor)"/>, specialised for <typeparamref name="TVisitor"/>:
    /// with a struct visitor no delegate is involved and nothing is allocated.</summary>
    public void Iterate<TVisitor>(ref TVisitor visitor) where TVisitor : IStackVisitor, allows ref struct
    {
        TreeStore store = Store;
        using StorePin pin = store.Pin();
        TreeWalker.Iterate(pin.Root, store.TreeForRead(pin, _id, _generation), _generation, ref visitor);
    }

    private readonly struct DelegateVisitor(StackVisitor visitor) : IStackVisitor
    {
        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total) => visitor(stack, self, total);
    }

    /// <inheritdoc/>
    public bool Equals(ProfileTree other) => ReferenceEquals(_store, other._store) && _id == other._id && _generation == other._generation;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is ProfileTree other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(_store, _id, _generation);

    /// <summary>Same store, tree id and generation.</summary>
    public static bool operator ==(ProfileTree left, ProfileTree right) => left.Equals(right);

    /// <summary>Different store or tree id.</summary>
    public static bool operator !=(ProfileTree left, ProfileTree right) => !left.Equals(right);
}
