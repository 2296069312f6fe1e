using ProfileArena.Baseline;
using ProfileArena.Cli.Measurement;
using ProfileArena.Workloads;

namespace ProfileArena.Cli.TakeHomeRun;

/// <summary>An engine as the take-home worker drives it. Built trees stay alive until disposal.</summary>
internal interface ITakeHomeEngine : IDisposable
{
    /// <summary>Builds one <c>foo;bar;baz</c> = 100 tree in isolation and measures it.</summary>
    SingleTreeCost MeasureSingleTree();

    /// <summary>Generates one tree from <paramref name="rng"/> and keeps it alive.</summary>
    (long Nodes, ulong Total) BuildTree(ref SplitMix64 rng, int width, int depth);

    long NativeBytes { get; }

    public static ITakeHomeEngine Create(string name) => name switch
    {
        "arena" => new ArenaEngine(),
        "baseline" => new BaselineEngine(),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "unknown engine"),
    };
}

internal sealed class BaselineEngine : ITakeHomeEngine
{
    // Like the Go program's slice of trees: everything built stays reachable.
    private readonly List<BaselineTree> _trees = [];

    public long NativeBytes => 0;

    public SingleTreeCost MeasureSingleTree()
    {
        Build(); // warm-up: JIT and static constructors must not count as the tree's cost
        long before = GC.GetAllocatedBytesForCurrentThread();
        BaselineTree tree = Build();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        return new SingleTreeCost
        {
            ManagedAllocatedBytes = allocated,
            NativeBytes = 0,
            Nodes = tree.NodeCount,
        };

        static BaselineTree Build()
        {
            var tree = new BaselineTree();
            tree.Insert("foo;bar;baz"u8, 100);
            return tree;
        }
    }

    public (long Nodes, ulong Total) BuildTree(ref SplitMix64 rng, int width, int depth)
    {
        var sink = new Sink(new BaselineTree());
        TakeHome.GenerateTree(ref rng, width, depth, ref sink);
        _trees.Add(sink.Tree);
        return (sink.Tree.NodeCount, sink.Tree.Total);
    }

    public void Dispose() => _trees.Clear();

    private readonly struct Sink(BaselineTree tree) : IKeySink
    {
        public BaselineTree Tree { get; } = tree;

        public void Insert(ReadOnlySpan<byte> key, ulong value) => Tree.Insert(key, value);
    }
}

internal sealed class ArenaEngine : ITakeHomeEngine
{
    // One store for all trees, so symbols are shared per store as designed.
    private readonly TreeStore _store = new();
    private readonly List<ProfileTree> _trees = [];

    public long NativeBytes => _store.NativeBytes;

    public SingleTreeCost MeasureSingleTree()
    {
        using (TreeStore warmUp = new()) // JIT and static constructors must not count as the tree's cost
            warmUp.CreateTree().Insert("foo;bar;baz"u8, 100);

        long before = GC.GetAllocatedBytesForCurrentThread();
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        tree.Insert("foo;bar;baz"u8, 100);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        return new SingleTreeCost
        {
            ManagedAllocatedBytes = allocated,
            NativeBytes = store.NativeBytes,
            Nodes = tree.NodeCount,
        };
    }

    public (long Nodes, ulong Total) BuildTree(ref SplitMix64 rng, int width, int depth)
    {
        var sink = new Sink(_store.CreateTree());
        TakeHome.GenerateTree(ref rng, width, depth, ref sink);
        _trees.Add(sink.Tree);
        return (sink.Tree.NodeCount, sink.Tree.Total);
    }

    public void Dispose() => _store.Dispose();

    private readonly struct Sink(ProfileTree tree) : IKeySink
    {
        public ProfileTree Tree { get; } = tree;

        public void Insert(ReadOnlySpan<byte> key, ulong value) => Tree.Insert(key, value);
    }
}
