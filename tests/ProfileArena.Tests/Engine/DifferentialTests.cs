using ProfileArena.Baseline;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Engine;

/// <summary>Property-style tests: random keys into the arena and the Baseline port, compared node by node.</summary>
public class DifferentialTests
{
    /// <summary>Random key: segments over a small alphabet (so names repeat and paths share prefixes)
    /// plus every byte but ';', 0x00 and 0xFF included, with empty segments.</summary>
    private static byte[] RandomKey(ref SplitMix64 rng, int maxDepth)
    {
        int depth = 1 + (int)rng.NextBelow((ulong)maxDepth);
        var key = new List<byte>();
        for (int d = 0; d < depth; d++)
        {
            if (d > 0) key.Add((byte)';');
            int len = (int)rng.NextBelow(5); // 0 = empty segment
            bool wide = rng.NextBelow(4) == 0;
            for (int i = 0; i < len; i++)
            {
                byte b = wide ? (byte)rng.NextBelow(256) : (byte)"ab\0\xff"[(int)rng.NextBelow(4)];
                if (b == (byte)';') b = 0xFF;
                key.Add(b);
            }
        }
        return key.ToArray();
    }

    [Theory]
    [InlineData(1UL, 2000, 6)]
    [InlineData(2UL, 5000, 3)]
    [InlineData(3UL, 3000, 40)]
    [InlineData(4UL, 500, 200)]
    public void RandomKeysMatchBaseline(ulong seed, int inserts, int maxDepth)
    {
        var rng = new SplitMix64(seed);
        using var store = new TreeStore();
        var tree = store.CreateTree();
        var baseline = new BaselineTree();
        byte[]? previous = null;
        for (int i = 0; i < inserts; i++)
        {
            // Often extend or repeat the previous key: exercises the path cache's reuse rules.
            byte[] key = previous != null && rng.NextBelow(3) == 0 ? Mutate(ref rng, previous) : RandomKey(ref rng, maxDepth);
            ulong value = rng.NextBelow(1000);
            tree.Insert(key, value);
            baseline.Insert(key, value);
            previous = key;
            if (i % 997 == 0) TreeSnapshot.AssertSame(baseline, tree);
        }
        TreeSnapshot.AssertSame(baseline, tree);
    }

    /// <summary>Near-copies of a key: truncations at and around ';', appended bytes, a trailing ';'.</summary>
    private static byte[] Mutate(ref SplitMix64 rng, byte[] key)
    {
        switch (rng.NextBelow(5))
        {
            case 0: return key;
            case 1: return key[..(int)rng.NextBelow((ulong)key.Length + 1)];
            case 2: return [.. key, (byte)';'];
            case 3: return [.. key, (byte)'a'];
            default:
                int semi = Array.LastIndexOf(key, (byte)';');
                return semi < 0 ? [.. key, (byte)';', (byte)'b'] : [.. key[..semi], (byte)';', (byte)'z'];
        }
    }

    [Fact]
    public void ManyTreesInOneStoreShareSymbols()
    {
        var rng = new SplitMix64(42);
        using var store = new TreeStore();
        var trees = Enumerable.Range(0, 20).Select(_ => store.CreateTree()).ToArray();
        var baselines = trees.Select(_ => new BaselineTree()).ToArray();
        for (int i = 0; i < 20_000; i++)
        {
            int t = (int)rng.NextBelow((ulong)trees.Length);
            byte[] key = RandomKey(ref rng, 8);
            ulong value = rng.NextBelow(100);
            trees[t].Insert(key, value);
            baselines[t].Insert(key, value);
        }
        for (int t = 0; t < trees.Length; t++) TreeSnapshot.AssertSame(baselines[t], trees[t]);
        Assert.Equal(trees.Sum(t => t.NodeCount), store.NodeCount);
        Assert.Equal(20, store.TreeCount);
        // Names come from a tiny alphabet: far fewer symbols than nodes when they are shared.
        Assert.True(store.SymbolCount < store.NodeCount / 4, $"{store.SymbolCount} symbols for {store.NodeCount} nodes");
    }

    [Fact]
    public void ValuesNearTwoToTheSixtyFour()
    {
        using var store = new TreeStore();
        var tree = store.CreateTree();
        var baseline = new BaselineTree();
        ulong[] values = [ulong.MaxValue / 4, ulong.MaxValue / 4 - 1, 1UL << 62, 3, ulong.MaxValue / 8];
        string[] keys = ["a;b", "a;c", "a", "a;b;c", "d"];
        for (int i = 0; i < keys.Length; i++) { tree.Insert(keys[i], values[i]); baseline.Insert(keys[i], values[i]); }
        Assert.Throws<OverflowException>(() => tree.Insert("e", ulong.MaxValue / 2));
        Assert.Throws<OverflowException>(() => baseline.Insert("e", ulong.MaxValue / 2));
        TreeSnapshot.AssertSame(baseline, tree);
    }

    [Fact]
    public void PathTenThousandFramesDeep()
    {
        var key = string.Join(';', Enumerable.Range(0, 10_000).Select(i => $"f{i % 37}"));
        using var store = new TreeStore();
        var tree = store.CreateTree();
        var baseline = new BaselineTree();
        tree.Insert(key, 3); baseline.Insert(key, 3);
        string shorter = key[..key.LastIndexOf(';')];
        tree.Insert(shorter, 4); baseline.Insert(shorter, 4);
        tree.Insert(key + ";leaf", 5); baseline.Insert(key + ";leaf", 5);
        Assert.Equal(10_002, tree.NodeCount);
        TreeSnapshot.AssertSame(baseline, tree);
    }

    [Fact]
    public void NodeWithOneHundredThousandChildren()
    {
        using var store = new TreeStore();
        var tree = store.CreateTree();
        var baseline = new BaselineTree();
        var rng = new SplitMix64(7);
        for (int i = 0; i < 100_000; i++)
        {
            string key = $"main;child{rng.NextUInt64():x}";
            tree.Insert(key, 1); baseline.Insert(key, 1);
        }
        // Revisit existing children out of insertion order: lookups must find them, not add twins.
        for (int i = 0; i < 1000; i++) { tree.Insert("main;child0", 2); baseline.Insert("main;child0", 2); }
        Assert.Equal(100_003, tree.NodeCount);
        TreeSnapshot.AssertSame(baseline, tree);
    }

    [Fact]
    public void TakeHomeGeneratorAtSmallSize()
    {
        // Two generators on one seed: each engine sees the same key stream.
        var rng = new SplitMix64(SplitMix64.TakeHomeSeed);
        var baselineRng = new SplitMix64(SplitMix64.TakeHomeSeed);
        using var store = new TreeStore();
        for (int t = 0; t < 3; t++)
        {
            var arena = new ArenaSink(store.CreateTree());
            TakeHome.GenerateTree(ref rng, 12, 30, ref arena);
            var baseline = new BaselineSink(new BaselineTree());
            TakeHome.GenerateTree(ref baselineRng, 12, 30, ref baseline);
            Assert.Equal(2 + 12 * 30, arena.Tree.NodeCount);
            TreeSnapshot.AssertSame(baseline.Tree, arena.Tree);
        }
    }
}
