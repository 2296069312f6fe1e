using BenchmarkDotNet.Attributes;
using ProfileArena.Baseline;
using ProfileArena.Benchmarks.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Benchmarks.Benchmarks;

/// <summary>
/// One op = one whole take-home tree (Go's generateTree(width, depth)): every prefix of every path is
/// inserted whole, so a 200 × 500 tree offers ≈ 2.03 GB of key bytes for 100,002 nodes.
/// Floor (the ratio baseline) reads the same keys once the way the arena's path cache does;
/// Generator is the key generation alone, which every other method also pays.
/// Store and tree are created in [IterationSetup] (one invocation per iteration), so the allocation
/// column shows what the inserts themselves allocate: 0 B for the arena.
/// </summary>
[MemoryDiagnoser]
[InvocationCount(1, unrollFactor: 1)]
public class InsertTakeHome
{
    [ParamsSource(nameof(ShapeValues))]
    public string Shape { get; set; } = "";

    public static IEnumerable<string> ShapeValues => Shapes.TakeHome;

    private int _width, _depth;
    private SplitMix64 _rng;
    private byte[] _previous = [];
    private TreeStore? _store;
    private ProfileTree _tree;
    private BaselineTree? _baseline;
    private long _nativeBytes, _nodes;

    [GlobalSetup]
    public void GlobalSetup()
    {
        (_width, _depth) = Shapes.Parse(Shape);
        _previous = new byte[4 + 81 * _depth + 64];
    }

    [IterationSetup(Targets = [nameof(Floor), nameof(Generator)])]
    public void SetupFloor() => _rng = new SplitMix64(SplitMix64.TakeHomeSeed);

    [IterationSetup(Target = nameof(Arena))]
    public void SetupArena()
    {
        _rng = new SplitMix64(SplitMix64.TakeHomeSeed);
        _store = new TreeStore();
        _tree = _store.CreateTree();
    }

    [IterationCleanup(Target = nameof(Arena))]
    public void CleanupArena()
    {
        long nodes = _tree.NodeCount;
        if (nodes != TakeHome.NodesPerTree(_width, _depth))
            throw new InvalidOperationException($"arena tree has {nodes} nodes, expected {TakeHome.NodesPerTree(_width, _depth)}");
        _nativeBytes = _store!.NativeBytes;
        _nodes = nodes;
        _store.Dispose();
        _store = null;
    }

    [IterationSetup(Target = nameof(BaselineTree))]
    public void SetupBaseline()
    {
        _rng = new SplitMix64(SplitMix64.TakeHomeSeed);
        _baseline = new BaselineTree();
    }

    [IterationCleanup(Target = nameof(BaselineTree))]
    public void CleanupBaseline() => _baseline = null;

    [GlobalCleanup(Target = nameof(Arena))]
    public void Report()
    {
        if (_nodes > 0)
            Console.WriteLine($"// InsertTakeHome {Shape}: one tree in a fresh store holds {_nativeBytes:N0} native bytes for {_nodes:N0} nodes = {(double)_nativeBytes / _nodes:F1} B/node");
    }

    [Benchmark(Baseline = true, Description = "Floor (prefix compare + tail copy)")]
    public ulong Floor()
    {
        var sink = new FloorSink(_previous);
        TakeHome.GenerateTree(ref _rng, _width, _depth, ref sink);
        return sink.Checksum;
    }

    [Benchmark(Description = "Generator only")]
    public ulong Generator()
    {
        var sink = new NullSink();
        TakeHome.GenerateTree(ref _rng, _width, _depth, ref sink);
        return sink.Checksum;
    }

    [Benchmark(Description = "Arena")]
    public ulong Arena()
    {
        var sink = new ArenaSink(_tree);
        TakeHome.GenerateTree(ref _rng, _width, _depth, ref sink);
        return _tree.Total;
    }

    [Benchmark(Description = "Baseline")]
    public ulong BaselineTree()
    {
        var sink = new BaselineSink(_baseline!);
        TakeHome.GenerateTree(ref _rng, _width, _depth, ref sink);
        return _baseline!.Total;
    }
}
