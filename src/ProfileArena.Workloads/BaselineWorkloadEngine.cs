using ProfileArena.Baseline;

namespace ProfileArena.Workloads;

/// <summary>The object-per-node Baseline behind <see cref="IWorkloadEngine"/>: like the Go program's slice of
/// trees, everything built stays reachable until disposal.</summary>
internal sealed class BaselineWorkloadEngine(int treeCapacity) : IWorkloadEngine
{
    private readonly List<BaselineTree> _trees = new(treeCapacity);
    private bool _disposed;

    public WorkloadEngine Kind => WorkloadEngine.Baseline;
    public int TreeCount => Live.Count;

    public long NativeBytes
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return 0;
        }
    }

    public long Nodes
    {
        get
        {
            long nodes = 0;
            foreach (BaselineTree tree in Live)
                nodes += tree.NodeCount;
            return nodes;
        }
    }

    public ulong TotalsSum
    {
        get
        {
            ulong sum = 0;
            foreach (BaselineTree tree in Live)
                sum += tree.Total;
            return sum;
        }
    }

    /// <summary>The trees, or <see cref="ObjectDisposedException"/> after Dispose (as the arena's store throws).</summary>
    private List<BaselineTree> Live
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _trees;
        }
    }

    public int AddTree()
    {
        Live.Add(new BaselineTree());
        return _trees.Count - 1;
    }

    public void Insert(int tree, ReadOnlySpan<byte> key, ulong value) => Live[tree].Insert(key, value);

    public int BuildTakeHome(ref SplitMix64 rng, int width, int depth)
    {
        List<BaselineTree> trees = Live;
        var sink = new BaselineSink(new BaselineTree());
        TakeHome.GenerateTree(ref rng, width, depth, ref sink);
        trees.Add(sink.Tree);
        return trees.Count - 1;
    }

    public long NodeCount(int tree) => Live[tree].NodeCount;
    public ulong Total(int tree) => Live[tree].Total;

    public void Iterate(int tree, StackVisitor visitor)
    {
        ArgumentNullException.ThrowIfNull(visitor);
        Live[tree].Iterate((stack, self, total) => visitor(stack, self, total));
    }

    public (long Nodes, long NativeBytes) BuildAlone(ReadOnlySpan<byte> key, ulong value)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var tree = new BaselineTree();
        tree.Insert(key, value);
        return (tree.NodeCount, 0);
    }

    public void Dispose()
    {
        _disposed = true;
        _trees.Clear();
    }
}
