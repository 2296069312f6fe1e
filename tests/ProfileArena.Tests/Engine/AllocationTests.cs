using ProfileArena.Workloads;

namespace ProfileArena.Tests.Engine;

/// <summary>Insert and Iterate allocate no managed memory in steady state.</summary>
public class AllocationTests
{
    private struct ByteTouchingVisitor : IStackVisitor
    {
        public ulong Sum;
        public long Nodes;
        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
        {
            foreach (byte b in stack) Sum += b;
            Sum += self ^ total;
            Nodes++;
        }
    }

    [Fact]
    public void HundredThousandInsertsAllocateNothing()
    {
        using var store = new TreeStore();
        var tree = store.CreateTree();
        var rng = new SplitMix64(1);
        var sink = new ArenaSink(tree);
        TakeHome.GenerateTree(ref rng, 2, 100, ref sink); // warm-up: JIT, generator buffer (deepest key), caches
        string[] stringKeys = ["s;0", "s;1", "s;2"];
        byte[][] keys = Enumerable.Range(0, 1000).Select(i => System.Text.Encoding.UTF8.GetBytes($"main;h{i % 7};w{i % 31};leaf{i}")).ToArray();
        foreach (var k in keys) tree.Insert(k, 1);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100_000; i++) tree.Insert(keys[i % keys.Length], (ulong)(i & 7));   // existing paths, real-shape
        TakeHome.GenerateTree(ref rng, 20, 100, ref sink);                                    // 2,020 inserts, 2,000 new nodes
        for (int i = 0; i < 1000; i++) tree.Insert(stringKeys[i % 3], 1);                         // string keys (stack-encoded)
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0, after - before);
    }

    [Fact]
    public void IterateWithACachedVisitorAllocatesNothing()
    {
        using var store = new TreeStore();
        var tree = store.CreateTree();
        var rng = new SplitMix64(2);
        var sink = new ArenaSink(tree);
        TakeHome.GenerateTree(ref rng, 50, 200, ref sink);
        for (int i = 0; i < 20_000; i++) tree.Insert($"fan;c{i}", 1); // a 20,000-child node to sort

        var visitor = new ByteTouchingVisitor();
        tree.Iterate(ref visitor); // warm-up
        StackVisitor cached = static (_, _, _) => { };
        tree.Iterate(cached);

        long before = GC.GetAllocatedBytesForCurrentThread();
        visitor = new ByteTouchingVisitor();
        tree.Iterate(ref visitor);
        tree.Iterate(cached);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0, after - before);
        Assert.Equal(tree.NodeCount - 1, visitor.Nodes);
    }
}
