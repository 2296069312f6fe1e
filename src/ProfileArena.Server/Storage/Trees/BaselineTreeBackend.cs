using System.Collections.Concurrent;
using ProfileArena.Baseline;

namespace ProfileArena.Server.Storage.Trees;

/// <summary>
/// Trees as <see cref="BaselineTree"/>s (one managed object per node, the Go layout): the "before" engine
/// of issue 12's <c>--storage baseline</c>, so the same server can be measured with the GC carrying every node.
/// Merge is what the Go original does: iterate the source and insert each node's self value into the target.
/// <para>Threads: as <see cref="ITreeBackend"/> asks, one tree admits many readers or one writer — each tree
/// has its own <see cref="ReaderWriterLockSlim"/>. Create and Remove run on the shard's loop only; the id map
/// is concurrent so queries can look trees up meanwhile.</para>
/// <para>Snapshots reuse the arena's verified snapshot format: <see cref="SaveToFile"/> copies every tree into
/// a temporary <see cref="TreeStore"/> under the same ids and saves that (so a snapshot costs a transient
/// native copy of the trees); <see cref="LoadFile"/> loads such a file and copies each tree back into a
/// <see cref="BaselineTree"/>. Snapshot files are therefore interchangeable between the two engines.</para>
/// </summary>
internal sealed class BaselineTreeBackend : ITreeBackend
{
    private readonly ConcurrentDictionary<int, Entry> _trees = new();
    private readonly Stack<int> _freeIds = new();
    private readonly Lock _idLock = new();
    private int _nextId;

    private BaselineTreeBackend() { }

    /// <summary>An empty backend.</summary>
    public static BaselineTreeBackend CreateEmpty() => new();

    /// <summary>The trees saved in <paramref name="path"/> (arena snapshot format, fully verified), ids kept.</summary>
    /// <exception cref="InvalidDataException">The file is corrupt; the message names it and the byte offset.</exception>
    public static BaselineTreeBackend LoadFile(string path)
    {
        TreeStore store;
        try
        {
            store = TreeStore.LoadFile(path);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"snapshot {path}: {e.Message}", e);
        }
        using (store)
        {
            var backend = new BaselineTreeBackend();
            foreach (ProfileTree tree in store.GetTrees())
            {
                var copy = new BaselineTree();
                tree.Iterate((stack, self, total) =>
                {
                    if (KeepsNode(self, total)) copy.Insert(stack, self);
                });
                backend._trees[tree.Id] = new Entry(copy);
                backend._nextId = Math.Max(backend._nextId, tree.Id + 1);
            }
            for (int id = backend._nextId - 1; id >= 0; id--)
            {
                if (!backend._trees.ContainsKey(id)) backend._freeIds.Push(id);
            }
            return backend;
        }
    }

    /// <summary>True when <paramref name="tree"/> is a live tree of this backend.</summary>
    public bool Exists(int tree) => _trees.ContainsKey(tree);

    public int Create()
    {
        int id;
        lock (_idLock) id = _freeIds.Count > 0 ? _freeIds.Pop() : _nextId++;
        _trees[id] = new Entry(new BaselineTree());
        return id;
    }

    public void Insert(int tree, ReadOnlySpan<byte> stack, ulong value)
    {
        Entry e = Get(tree);
        e.Lock.EnterWriteLock();
        try
        {
            e.Tree.Insert(stack, value);
        }
        finally
        {
            Volatile.Write(ref e.Version, NextVersion());
            e.Lock.ExitWriteLock();
        }
    }

    public void Merge(int target, int source)
    {
        Entry t = Get(target), s = Get(source);
        if (ReferenceEquals(t, s)) throw new ArgumentException("a Baseline tree cannot be merged into itself", nameof(source));
        // Only the shard's loop writes, and readers hold one tree at a time, so read(source) + write(target) cannot deadlock.
        s.Lock.EnterReadLock();
        try
        {
            t.Lock.EnterWriteLock();
            try
            {
                // All or nothing: the one failure a Baseline insert has (root total overflow) is checked first.
                if (s.Tree.Total > ulong.MaxValue - t.Tree.Total)
                    throw new OverflowException($"merging would take the tree's total past 2^64 − 1 ({t.Tree.Total} + {s.Tree.Total})");
                BaselineTree into = t.Tree;
                s.Tree.Iterate((stack, self, total) =>
                {
                    if (KeepsNode(self, total)) into.Insert(stack, self);
                });
            }
            finally
            {
                Volatile.Write(ref t.Version, NextVersion());
                t.Lock.ExitWriteLock();
            }
        }
        finally
        {
            s.Lock.ExitReadLock();
        }
    }

    /// <remarks>Not all or nothing on the destination: a query's destination that hits its cap is discarded by the caller.</remarks>
    public bool TryGetProfileTree(int tree, out ProfileTree handle)
    {
        handle = default;
        return false;
    }

    public void MergeInto(ProfileTree destination, ReadOnlySpan<int> sources)
    {
        foreach (int source in sources) MergeInto(destination, source);
    }

    private void MergeInto(ProfileTree destination, int source)
    {
        Entry s = Get(source);
        s.Lock.EnterReadLock();
        try
        {
            s.Tree.Iterate((stack, self, total) =>
            {
                if (KeepsNode(self, total)) destination.Insert(stack, self);
            });
        }
        finally
        {
            s.Lock.ExitReadLock();
        }
    }

    public void Remove(int tree)
    {
        if (!_trees.TryRemove(tree, out Entry? e)) throw new ArgumentException($"No tree with id {tree} exists in this backend.", nameof(tree));
        // A query holding the tree finishes first (the shard's removal lock already keeps queries out; this is belt and braces).
        e.Lock.EnterWriteLock();
        e.Lock.ExitWriteLock();
        lock (_idLock) _freeIds.Push(tree);
    }

    public ulong Total(int tree)
    {
        Entry e = Get(tree);
        e.Lock.EnterReadLock();
        try
        {
            return e.Tree.Total;
        }
        finally
        {
            e.Lock.ExitReadLock();
        }
    }

    public long TreeCount => _trees.Count;

    /// <summary>Nodes of all trees, each tree's root included (as <see cref="TreeStore.NodeCount"/>).</summary>
    public long NodeCount
    {
        get
        {
            long nodes = 0;
            foreach (Entry e in _trees.Values) nodes += e.Tree.NodeCount; // one aligned 8-byte read: never torn
            return nodes;
        }
    }

    public long NativeBytes => 0;

    /// <summary>0: every Baseline node owns its name (a byte array), freed with its tree, so removing trees frees
    /// their names and there is never anything for a compaction to reclaim.</summary>
    public long NameBytes => 0;

    /// <summary>Never needed (see <see cref="NameBytes"/>): a shard compacts only a backend holding names apart from its trees.</summary>
    public ITreeBackend CopyTrees(IReadOnlyList<int> trees, Span<int> newIds) =>
        throw new NotSupportedException("the Baseline engine frees names with their trees; there is nothing to compact");

    /// <summary>Managed bytes per Baseline node, measured: 1,003 MiB of live objects for 6.0 M nodes of the
    /// ServerLoad workload (heap snapshot, perf/README.md "Server load") ≈ 175 B: the <c>BaselineNode</c> (48 B),
    /// its <c>List</c> (32 B), its slot in the parent's list array with growth slack, and its name array.</summary>
    public const long EstimatedBytesPerNode = 176;

    /// <summary>The arena's bytes per node on the same workload (≈ 40 B/node at 100 M nodes).</summary>
    private const long ArenaBytesPerNode = 40;

    /// <summary>Nodes × <see cref="EstimatedBytesPerNode"/>: Baseline's trees are on the managed heap, so the
    /// budget bounds this estimate of them (the GC's own figures include garbage and the server's other objects).</summary>
    public long BudgetBytes => NodeCount * EstimatedBytesPerNode;

    /// <summary>The arena's estimate scaled by Baseline's bytes per node over the arena's.</summary>
    public long GrowthEstimate(long stackBytes, long stacks) => (stackBytes + 48 * stacks) * EstimatedBytesPerNode / ArenaBytesPerNode;

    public void SaveToFile(string path)
    {
        using var store = new TreeStore();
        int count;
        lock (_idLock) count = _nextId;
        // A fresh store hands out ids 0, 1, 2, … in order: create every id up to the highest, fill the live ones,
        // remove the others, so the saved ids are this backend's (the series index refers to them).
        var created = new ProfileTree[count];
        for (int id = 0; id < count; id++)
        {
            created[id] = store.CreateTree();
            if (created[id].Id != id) throw new InvalidOperationException($"a fresh TreeStore gave id {created[id].Id} where {id} was expected");
        }
        for (int id = 0; id < count; id++)
        {
            if (_trees.TryGetValue(id, out Entry? e))
            {
                ProfileTree into = created[id];
                e.Lock.EnterReadLock();
                try
                {
                    e.Tree.Iterate((stack, self, total) =>
                    {
                        if (KeepsNode(self, total)) into.Insert(stack, self);
                    });
                }
                finally
                {
                    e.Lock.ExitReadLock();
                }
            }
            else
            {
                store.Remove(created[id]);
            }
        }
        store.SaveToFile(path);
    }

    public void Dispose()
    {
        foreach (Entry e in _trees.Values) e.Lock.Dispose();
        _trees.Clear();
    }

    /// <summary>Which visited nodes a copy inserts: those with self value, and zero-valued subtrees (which
    /// no descendant's insert would create); nodes with only descendants' values are made by those inserts.</summary>
    private static bool KeepsNode(ulong self, ulong total) => self > 0 || total == 0;

    private Entry Get(int tree) =>
        _trees.TryGetValue(tree, out Entry? e) ? e : throw new ArgumentException($"No tree with id {tree} exists in this backend.", nameof(tree));

    private sealed class Entry(BaselineTree tree)
    {
        public BaselineTree Tree { get; } = tree;
        public ReaderWriterLockSlim Lock { get; } = new(LockRecursionPolicy.NoRecursion);
        /// <summary>Taken from the process-wide counter when created and after every write (under the write lock), so no
        /// two states of any trees share a value: an id reused by a later tree never repeats an earlier version.</summary>
        public ulong Version = NextVersion();
        /// <summary>Tells this tree apart from a later one reusing its id.</summary>
        public readonly ulong Identity = NextVersion();
    }

    private static ulong _versions;

    private static ulong NextVersion() => Interlocked.Increment(ref _versions);

    /// <summary>The tree's stamp (<see cref="ITreeBackend.Stamp"/>): read before the tree, without its lock.</summary>
    public TreeStamp Stamp(int tree)
    {
        Entry e = Get(tree);
        return new TreeStamp(e.Identity, Volatile.Read(ref e.Version));
    }
}
