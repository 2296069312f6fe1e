using BenchmarkDotNet.Attributes;
using ProfileArena.Baseline;
using ProfileArena.Benchmarks.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Benchmarks.Benchmarks;

/// <summary>
/// Snapshot throughput: one op = Save of the whole store to a reused MemoryStream, Load of those bytes
/// into a new store (every check, indexes rebuilt), or OpenSnapshot of the file plus the first touch of
/// every tree (lazy verification). The store: take-home trees (80-byte unique names).
/// The plain-program counterpart with MB/s and the fresh-memory floor is perf/ProfileArena.EmbedPerf.
/// </summary>
[MemoryDiagnoser]
public class Snapshots
{
    private TreeStore _store = null!;
    private byte[] _bytes = null!;
    private MemoryStream _buffer = null!;
    private string _path = "";

    [GlobalSetup]
    public void GlobalSetup()
    {
        _store = new TreeStore();
        var rng = new SplitMix64(SplitMix64.TakeHomeSeed);
        (int trees, int width, int depth) = Shapes.Smoke ? (2, 10, 10) : (4, 100, 250);
        for (int t = 0; t < trees; t++)
        {
            var sink = new ArenaSink(_store.CreateTree());
            TakeHome.GenerateTree(ref rng, width, depth, ref sink);
        }
        _buffer = new MemoryStream();
        _store.Save(_buffer);
        _bytes = _buffer.ToArray();
        _path = Path.Combine(Path.GetTempPath(), $"pa-bench-{Environment.ProcessId}.snap");
        _store.SaveToFile(_path);
    }

    [GlobalCleanup]
    public void GlobalCleanup()
    {
        _store.Dispose();
        File.Delete(_path);
    }

    [Benchmark]
    public long Save()
    {
        _buffer.Position = 0;
        _store.Save(_buffer);
        return _buffer.Position;
    }

    [Benchmark]
    public long Load()
    {
        using var store = TreeStore.Load(new MemoryStream(_bytes, writable: false));
        return store.NodeCount;
    }

    [Benchmark]
    public ulong OpenSnapshotAndTouch()
    {
        using var store = TreeStore.OpenSnapshot(_path);
        ulong sum = 0;
        foreach (var tree in store.GetTrees()) sum += tree.Top(1, TopBy.Total)[0].Total;
        return sum;
    }
}

/// <summary>
/// One op = add a source tree into a fresh target. Arena: <c>MergeFrom</c> (then Remove the target);
/// Baseline (it has no merge): Iterate the source and Insert each node's self. "Real" = every stack
/// of the test data; "TakeHome" = one take-home tree (unique names: every node is created).
/// </summary>
[MemoryDiagnoser]
public class Merge
{
    [Params("Real", "TakeHome")]
    public string Source { get; set; } = "";

    private TreeStore _store = null!;
    private ProfileTree _source;
    private BaselineTree _baseline = null!;

    [GlobalSetup]
    public void GlobalSetup()
    {
        _store = new TreeStore();
        _source = _store.CreateTree();
        _baseline = new BaselineTree();
        if (Source == "TakeHome")
        {
            var rng = new SplitMix64(SplitMix64.TakeHomeSeed);
            var sink = new ArenaSink(_source);
            TakeHome.GenerateTree(ref rng, Shapes.Smoke ? 10 : 200, Shapes.Smoke ? 10 : 100, ref sink);
        }
        else
        {
            CollapsedStacks stacks = CollapsedStacks.All;
            for (int i = 0; i < stacks.Count; i++) _source.Insert(stacks.Key(i), stacks.Value(i));
        }
        _source.Iterate((stack, self, _) => _baseline.Insert(stack, self));
    }

    [GlobalCleanup]
    public void GlobalCleanup() => _store.Dispose();

    [Benchmark]
    public long ArenaMergeFrom()
    {
        var target = _store.CreateTree();
        target.MergeFrom(_source);
        long nodes = target.NodeCount;
        _store.Remove(target);
        return nodes;
    }

    [Benchmark(Baseline = true)]
    public long BaselineReplay()
    {
        var target = new BaselineTree();
        _baseline.Iterate((stack, self, _) => target.Insert(stack, self));
        return target.NodeCount;
    }
}

/// <summary>
/// A query's merge: many trees of one shard-like source store into one destination in a fresh store (what
/// /render does per shard). The source store holds 40 trees (a subset of the real stacks each, a share of leaf
/// frames renamed per tree, values varied) beside a bulk tree that gives the store far more names than any tree
/// has nodes. One op = a new destination store, all 40 trees merged into one tree, store disposed.
/// <c>MergeFromEach</c> calls <see cref="ProfileTree.MergeFrom(ProfileTree)"/> per tree (every name of every
/// tree looked up again); <c>Session</c> merges through one <see cref="TreeMergeSession"/> (each name once).
/// </summary>
[MemoryDiagnoser]
public class MergeManyIntoOne
{
    private TreeStore _store = null!;
    private ProfileTree[] _trees = [];

    [GlobalSetup]
    public void GlobalSetup()
    {
        _store = new TreeStore();
        var rng = new SplitMix64(42);
        CollapsedStacks stacks = CollapsedStacks.All;
        int trees = Shapes.Smoke ? 3 : 40, bulk = Shapes.Smoke ? 1000 : 400_000;
        ProfileTree names = _store.CreateTree();
        for (int i = 0; i < bulk; i++) names.Insert($"bulk;module{i % 97}/function_{i}", 1);
        _trees = new ProfileTree[trees];
        var key = new List<byte>();
        for (int t = 0; t < trees; t++)
        {
            ProfileTree tree = _store.CreateTree();
            for (int i = 0; i < stacks.Count; i++)
            {
                if (rng.NextBelow(10) < 3) continue; // ~70 % of the stacks per tree
                key.Clear();
                key.AddRange(stacks.Key(i));
                if (rng.NextBelow(10) == 0) key.AddRange(System.Text.Encoding.ASCII.GetBytes($"_v{t}")); // a renamed leaf
                tree.Insert(key.ToArray(), stacks.Value(i) * (1 + rng.NextBelow(4)));
            }
            _trees[t] = tree;
        }
    }

    [GlobalCleanup]
    public void GlobalCleanup() => _store.Dispose();

    [Benchmark(Baseline = true)]
    public long MergeFromEach()
    {
        using var query = new TreeStore();
        ProfileTree destination = query.CreateTree();
        foreach (ProfileTree tree in _trees) destination.MergeFrom(tree);
        return destination.NodeCount;
    }

    [Benchmark]
    public long Session()
    {
        using var query = new TreeStore();
        ProfileTree destination = query.CreateTree();
        using TreeMergeSession session = destination.BeginMerge(_store);
        foreach (ProfileTree tree in _trees) session.Merge(tree);
        return destination.NodeCount;
    }
}
