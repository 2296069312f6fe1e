using System.Text;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Workloads;

/// <summary>
/// The one adapter from a key stream to an engine (<see cref="IWorkloadEngine"/>), for every
/// <see cref="WorkloadEngine"/>: the same random key stream into several trees gives each engine exactly the trees
/// of the plain <see cref="ReferenceTree"/> model, node by node; the take-home generator's trees likewise.
/// </summary>
public sealed class WorkloadEngineTests
{
    public static TheoryData<WorkloadEngine> Engines() => [.. WorkloadEngines.All];

    // Names that exercise the semantics: empty names, a name that prefixes another, bytes ≥ 0x80 (sorted after ASCII).
    private static readonly byte[][] Names =
        [.. new[] { "a", "b", "aa", "ab", "", "main", "z" }.Select(Encoding.ASCII.GetBytes), [0xC3, 0xA9], [0xFF], [0x80, (byte)'a']];

    private static byte[] RandomKey(ref SplitMix64 rng)
    {
        int segments = 1 + (int)rng.NextBelow(6);
        var key = new List<byte>();
        for (int i = 0; i < segments; i++)
        {
            if (i > 0) key.Add((byte)';');
            key.AddRange(Names[rng.NextBelow((ulong)Names.Length)]);
        }
        return [.. key];
    }

    private static List<VisitedNode> Snapshot(IWorkloadEngine engine, int tree)
    {
        var nodes = new List<VisitedNode>();
        engine.Iterate(tree, (stack, self, total) => nodes.Add(new VisitedNode(TreeSnapshot.Latin1(stack), self, total)));
        return nodes;
    }

    private static void AssertSameTrees(IReadOnlyList<ReferenceTree> expected, IWorkloadEngine engine)
    {
        Assert.Equal(expected.Count, engine.TreeCount);
        ulong totals = 0;
        long nodes = 0;
        for (int t = 0; t < expected.Count; t++)
        {
            List<VisitedNode> want = expected[t].Nodes(), got = Snapshot(engine, t);
            for (int i = 0; i < Math.Min(want.Count, got.Count); i++)
                if (want[i] != got[i]) Assert.Fail($"{engine.Kind}, tree {t}, node {i}: expected {want[i]}, got {got[i]}");
            Assert.Equal(want.Count, got.Count);
            Assert.Equal(expected[t].NodeCount, engine.NodeCount(t));
            Assert.Equal(expected[t].Total, engine.Total(t));
            totals += expected[t].Total;
            nodes += expected[t].NodeCount;
        }
        Assert.Equal(nodes, engine.Nodes);
        Assert.Equal(totals, engine.TotalsSum);
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void RandomKeyStreamsIntoSeveralTreesGiveTheReferenceTrees(WorkloadEngine kind)
    {
        for (ulong seed = 1; seed <= 8; seed++)
        {
            var rng = new SplitMix64(seed);
            using IWorkloadEngine engine = WorkloadEngines.Create(kind);
            Assert.Equal(kind, engine.Kind);
            var expected = new List<ReferenceTree>();
            int overflows = 0;
            for (int op = 0; op < 1500; op++)
            {
                if (expected.Count == 0 || rng.NextBelow(100) < 3)
                {
                    Assert.Equal(expected.Count, engine.AddTree());
                    expected.Add(new ReferenceTree());
                    continue;
                }
                int tree = (int)rng.NextBelow((ulong)expected.Count);
                byte[] key = RandomKey(ref rng);
                // Mostly small counts and some zeros (a zero still creates the path); now and then one that overflows.
                ulong value = rng.NextBelow(50) switch
                {
                    0 => 0,
                    1 => ulong.MaxValue - rng.NextBelow(3),
                    _ => rng.NextBelow(1000),
                };
                if (expected[tree].WouldOverflow(value))
                {
                    Assert.Throws<OverflowException>(() => engine.Insert(tree, key, value));
                    overflows++;
                    continue;
                }
                engine.Insert(tree, key, value);
                expected[tree].Insert(key, value);
            }
            Assert.True(overflows > 0, "the stream should reach the overflow check");
            AssertSameTrees(expected, engine);
        }
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void TakeHomeTreesAreTheGeneratorsKeyStream(WorkloadEngine kind)
    {
        using IWorkloadEngine engine = WorkloadEngines.Create(kind, treeCapacity: 3);
        var rng = new SplitMix64(SplitMix64.TakeHomeSeed);
        var model = new SplitMix64(SplitMix64.TakeHomeSeed);
        var expected = new List<ReferenceTree>();
        foreach ((int width, int depth) in new[] { (3, 4), (12, 30), (1, 1) })
        {
            var reference = new ReferenceTree();
            TakeHome.GenerateTree(ref model, width, depth, ref reference);
            expected.Add(reference);
            Assert.Equal(expected.Count - 1, engine.BuildTakeHome(ref rng, width, depth));
            Assert.Equal(TakeHome.NodesPerTree(width, depth), engine.NodeCount(expected.Count - 1));
        }
        // The engine advanced the caller's generator exactly as far as the generator itself does.
        Assert.Equal(model.NextUInt64(), rng.NextUInt64());
        AssertSameTrees(expected, engine);
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void BuildAloneMeasuresOneTreeAndLeavesTheEnginesTreesAlone(WorkloadEngine kind)
    {
        using IWorkloadEngine engine = WorkloadEngines.Create(kind);
        int tree = engine.AddTree();
        engine.Insert(tree, "x;y"u8, 7);
        long nodesBefore = engine.Nodes;

        (long nodes, long nativeBytes) = engine.BuildAlone("foo;bar;baz"u8, 100);

        Assert.Equal(4, nodes); // root, foo, bar, baz
        if (kind == WorkloadEngine.Baseline) Assert.Equal(0, nativeBytes);
        else Assert.True(nativeBytes > 0, $"an arena tree lives in native memory, got {nativeBytes} bytes");
        Assert.Equal(1, engine.TreeCount);
        Assert.Equal(nodesBefore, engine.Nodes);
        Assert.Equal(7UL, engine.TotalsSum);
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void EveryMemberThrowsAfterDispose(WorkloadEngine kind)
    {
        IWorkloadEngine engine = WorkloadEngines.Create(kind);
        int tree = engine.AddTree();
        engine.Insert(tree, "a;b"u8, 1);
        engine.Dispose();
        engine.Dispose(); // twice is harmless

        var rng = new SplitMix64(1);
        Assert.Throws<ObjectDisposedException>(() => engine.AddTree());
        Assert.Throws<ObjectDisposedException>(() => engine.Insert(tree, "a"u8, 1));
        Assert.Throws<ObjectDisposedException>(() => engine.BuildTakeHome(ref rng, 1, 1));
        Assert.Throws<ObjectDisposedException>(() => engine.Nodes);
        Assert.Throws<ObjectDisposedException>(() => engine.NativeBytes);
        Assert.Throws<ObjectDisposedException>(() => engine.TotalsSum);
        Assert.Throws<ObjectDisposedException>(() => engine.Iterate(tree, (_, _, _) => { }));
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void ATreeNumberNotAddedIsRefused(WorkloadEngine kind)
    {
        using IWorkloadEngine engine = WorkloadEngines.Create(kind);
        engine.AddTree();
        Assert.Throws<ArgumentOutOfRangeException>(() => engine.Insert(1, "a"u8, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => engine.Insert(-1, "a"u8, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => engine.Total(1));
        Assert.Equal(1, engine.Nodes); // the tree that exists is still just its root
    }
}
