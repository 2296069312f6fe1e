namespace ProfileArena.Workloads;

/// <summary>The arena behind <see cref="IWorkloadEngine"/>: one <see cref="TreeStore"/> for all trees, so names are
/// interned once per store as designed.</summary>
internal sealed class ArenaWorkloadEngine(int treeCapacity) : IWorkloadEngine
{
    private readonly TreeStore _store = new();
    // ProfileTree is a struct handle: the list holds no object per tree.
    private readonly List<ProfileTree> _trees = new(treeCapacity);
    private bool _disposed;

    public WorkloadEngine Kind => WorkloadEngine.Arena;
    public int TreeCount => Live.Count;
    public long Nodes => _store.NodeCount;
    public long NativeBytes => _store.NativeBytes;

    public ulong TotalsSum
    {
        get
        {
            ulong sum = 0;
            foreach (ProfileTree tree in Live)
                sum += tree.Total;
            return sum;
        }
    }

    /// <summary>The tree handles, or <see cref="ObjectDisposedException"/> after Dispose (the store throws too, but
    /// a tree number must not meet an emptied list first).</summary>
    private List<ProfileTree> Live
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _trees;
        }
    }

    public int AddTree()
    {
        Live.Add(_store.CreateTree());
        return _trees.Count - 1;
    }

    public void Insert(int tree, ReadOnlySpan<byte> key, ulong value) => Live[tree].Insert(key, value);

    public int BuildTakeHome(ref SplitMix64 rng, int width, int depth)
    {
        List<ProfileTree> trees = Live;
        var sink = new ArenaSink(_store.CreateTree());
        TakeHome.GenerateTree(ref rng, width, depth, ref sink);
        trees.Add(sink.Tree);
        return trees.Count - 1;
    }

    public long NodeCount(int tree) => Live[tree].NodeCount;
    public ulong Total(int tree) => Live[tree].Total;
    public void Iterate(int tree, StackVisitor visitor) => Live[tree].Iterate(visitor);

    public (long Nodes, long NativeBytes) BuildAlone(ReadOnlySpan<byte> key, ulong value)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        tree.Insert(key, value);
        return (tree.NodeCount, store.NativeBytes);
    }

    public void Dispose()
    {
        _disposed = true;
        _store.Dispose(); // frees every tree's native memory; their handles throw ObjectDisposedException from here on
        _trees.Clear();
    }
}
