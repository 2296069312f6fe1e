using BenchmarkDotNet.Attributes;
using ProfileArena.Baseline;
using ProfileArena.Benchmarks.Support;

namespace ProfileArena.Benchmarks.Benchmarks;

/// <summary>
/// One op = every stack of every file under ../shared/testdata/collapsed (pre-parsed into byte keys and
/// counts), replayed <see cref="Shapes.RealReplays"/> times into each of <see cref="Shapes.RealTrees"/>
/// trees of one store: real fan-outs, deep shared prefixes, names repeated within and across trees
/// (the first tree interns, the others hit the store's symbol table). Store and trees are created in
/// [IterationSetup].
/// </summary>
[MemoryDiagnoser]
[InvocationCount(1, unrollFactor: 1)]
public class InsertRealShape
{
    private CollapsedStacks _stacks = null!;
    private TreeStore? _store;
    private ProfileTree[] _trees = [];
    private BaselineTree[] _baselines = [];
    private long _nativeBytes, _nodes, _symbols;

    public int Trees => Shapes.RealTrees;
    public int Replays => Shapes.RealReplays;

    [GlobalSetup]
    public void GlobalSetup()
    {
        _stacks = CollapsedStacks.All;
        Console.WriteLine($"// InsertRealShape: {_stacks.Files} files, {_stacks.Count:N0} stacks, {_stacks.KeyBytes:N0} key bytes; {Trees} trees × {Replays} replays per op");
    }

    [IterationSetup(Target = nameof(Arena))]
    public void SetupArena()
    {
        _store = new TreeStore();
        _trees = new ProfileTree[Trees];
        for (int t = 0; t < _trees.Length; t++) _trees[t] = _store.CreateTree();
    }

    [IterationCleanup(Target = nameof(Arena))]
    public void CleanupArena()
    {
        _nativeBytes = _store!.NativeBytes;
        _nodes = _store.NodeCount;
        _symbols = _store.SymbolCount;
        _store.Dispose();
        _store = null;
    }

    [IterationSetup(Target = nameof(BaselineTree))]
    public void SetupBaseline()
    {
        _baselines = new BaselineTree[Trees];
        for (int t = 0; t < _baselines.Length; t++) _baselines[t] = new BaselineTree();
    }

    [IterationCleanup(Target = nameof(BaselineTree))]
    public void CleanupBaseline() => _baselines = [];

    [GlobalCleanup(Target = nameof(Arena))]
    public void Report()
    {
        if (_nodes > 0)
            Console.WriteLine($"// InsertRealShape: store of {Trees} trees holds {_nativeBytes:N0} native bytes for {_nodes:N0} nodes ({_symbols:N0} symbols) = {(double)_nativeBytes / _nodes:F1} B/node");
    }

    [Benchmark(Description = "Arena")]
    public ulong Arena()
    {
        CollapsedStacks stacks = _stacks;
        ulong sum = 0;
        foreach (ProfileTree tree in _trees)
        {
            for (int r = 0; r < Replays; r++)
                for (int i = 0; i < stacks.Count; i++)
                    tree.Insert(stacks.Key(i), stacks.Value(i));
            sum += tree.Total;
        }
        return sum;
    }

    [Benchmark(Baseline = true, Description = "Baseline")]
    public ulong BaselineTree()
    {
        CollapsedStacks stacks = _stacks;
        ulong sum = 0;
        foreach (BaselineTree tree in _baselines)
        {
            for (int r = 0; r < Replays; r++)
                for (int i = 0; i < stacks.Count; i++)
                    tree.Insert(stacks.Key(i), stacks.Value(i));
            sum += tree.Total;
        }
        return sum;
    }
}
