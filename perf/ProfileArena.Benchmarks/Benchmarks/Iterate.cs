using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using ProfileArena.Baseline;
using ProfileArena.Benchmarks.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Benchmarks.Benchmarks;

/// <summary>
/// One op = a full walk of one tree (every node but the root, pre-order, siblings sorted), arena vs
/// Baseline on the same contents. "TouchBytes" visitors read every byte of every stack (so neither
/// engine can skip producing it); "Light" visitors read only length and last byte (the walk itself).
/// The arena uses a struct visitor (specialised, 0 B); the Baseline's only API is a delegate.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
[CategoriesColumn]
public class Iterate
{
    /// <summary>TakeHome = one 200 × 500 tree (100,002 nodes); Real = every stack of the test data in one tree.</summary>
    [Params("TakeHome", "Real")]
    public string Tree { get; set; } = "";

    private TreeStore? _store;
    private ProfileTree _tree;
    private BaselineTree _baseline = null!;
    private readonly BaselineVisitors _visitors = new();
    private Baseline.StackVisitor _touch = null!, _light = null!;

    [GlobalSetup]
    public void GlobalSetup()
    {
        _store = new TreeStore();
        _tree = _store.CreateTree();
        _baseline = new BaselineTree();
        if (Tree == "TakeHome")
        {
            (int width, int depth) = Shapes.Parse(Shapes.IterateTakeHome);
            var rng = new SplitMix64(SplitMix64.TakeHomeSeed);
            var sink = new ArenaSink(_tree);
            TakeHome.GenerateTree(ref rng, width, depth, ref sink);
            rng = new SplitMix64(SplitMix64.TakeHomeSeed);
            var baselineSink = new BaselineSink(_baseline);
            TakeHome.GenerateTree(ref rng, width, depth, ref baselineSink);
        }
        else
        {
            CollapsedStacks stacks = CollapsedStacks.All;
            for (int i = 0; i < stacks.Count; i++)
            {
                _tree.Insert(stacks.Key(i), stacks.Value(i));
                _baseline.Insert(stacks.Key(i), stacks.Value(i));
            }
        }
        if (_tree.NodeCount != _baseline.NodeCount || _tree.Total != _baseline.Total)
            throw new InvalidOperationException($"engines disagree: arena {_tree.NodeCount} nodes / {_tree.Total}, baseline {_baseline.NodeCount} / {_baseline.Total}");
        _touch = _visitors.TouchBytes;
        _light = _visitors.Light;
        var check = new LightVisitor();
        _tree.Iterate(ref check);
        Console.WriteLine($"// Iterate {Tree}: {_tree.NodeCount:N0} nodes, {check.Acc:N0} light checksum");
    }

    [GlobalCleanup]
    public void GlobalCleanup() => _store?.Dispose();

    [BenchmarkCategory("TouchBytes"), Benchmark(Description = "Arena")]
    public ulong ArenaTouchBytes()
    {
        var visitor = new TouchBytesVisitor();
        _tree.Iterate(ref visitor);
        return visitor.Acc;
    }

    [BenchmarkCategory("TouchBytes"), Benchmark(Baseline = true, Description = "Baseline")]
    public ulong BaselineTouchBytes()
    {
        _visitors.Acc = 0;
        _baseline.Iterate(_touch);
        return _visitors.Acc;
    }

    [BenchmarkCategory("Light"), Benchmark(Description = "Arena")]
    public ulong ArenaLight()
    {
        var visitor = new LightVisitor();
        _tree.Iterate(ref visitor);
        return visitor.Acc;
    }

    [BenchmarkCategory("Light"), Benchmark(Baseline = true, Description = "Baseline")]
    public ulong BaselineLight()
    {
        _visitors.Acc = 0;
        _baseline.Iterate(_light);
        return _visitors.Acc;
    }
}
