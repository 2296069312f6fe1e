namespace ProfileArena.Workloads;

/// <summary>The arena behind <see cref="IWorkloadEngine"/>: one <see cref="TreeStore"/> for all trees, so names are
/// interned once per store as designed.</summary>
internal sealed class ArenaWorkloadEngine(int treeCapacity) : IWorkloadEngine
{
    private readonly TreeStore _store = new();
    // ProfileTree is a struct handle: the list holds no object per tree.
    private readonly List<ProfileTree> _trees = new(treeCapacity);

    public WorkloadEngine Kind => WorkloadEngine.Arena;
    public int TreeCount => _trees.Count;
    public long Nodes => _store.NodeCount;
    public long NativeBytes => _store.NativeBytes;

    public ulong TotalsSum
    {
        get
        {
            ulong sum = 0;
            foreach (ProfileTree tree in _trees)
                sum += tree.Total;
            return sum;
        }
    }

    public int AddTree()
    {
        _trees.Add(_store.CreateTree());
        return _trees.Count - 1;
    }

    public void Insert(int tree, ReadOnlySpan<byte> key, ulong value) => _trees[tree].Insert(key, value);

    public int BuildTakeHome(ref SplitMix64 rng, int width, int depth)
    {
        var sink = new ArenaSink(_store.CreateTree());
        TakeHome.GenerateTree(ref rng, width, depth, ref sink);
        _trees.Add(sink.Tree);
        return _trees.Count - 1;
    }

    public long NodeCount(int tree) => _trees[tree].NodeCount;
    public ulong Total(int tree) => _trees[tree].Total;
    public void Iterate(int tree, StackVisitor visitor) => _trees[tree].Iterate(visitor);

    public (long Nodes, long NativeBytes) BuildAlone(ReadOnlySpan<byte> key, ulong value)
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        tree.Insert(key, value);
        return (tree.NodeCount, store.NativeBytes);
    }

    public void Dispose()
    {
        _store.Dispose(); // every tree handle throws ObjectDisposedException from here on
        _trees.Clear();
    }
}
