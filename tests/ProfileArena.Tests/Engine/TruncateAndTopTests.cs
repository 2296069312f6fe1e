using ProfileArena.Baseline;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Engine;

public class TruncateAndTopTests
{
    public static TheoryData<string> SomeCollapsedFiles()
    {
        var data = new TheoryData<string>();
        foreach (var f in SharedData.Files("collapsed").Where((_, i) => i % 4 == 0)) data.Add(SharedData.Relative(f));
        return data;
    }

    private static void CheckTruncate(TreeStore store, ProfileTree tree, BaselineTree baseline, long maxNodes)
    {
        ulong total = tree.Total;
        long storeNodes = store.NodeCount, treeNodes = tree.NodeCount;
        ulong min = Oracles.MinValue(baseline, maxNodes);
        var expected = min == 0 ? Oracles.Copy(baseline) : Oracles.FoldBelow(baseline, min);
        long removed = tree.Truncate(maxNodes);
        TreeSnapshot.AssertSame(expected, tree);
        Assert.Equal(total, tree.Total);
        Assert.Equal(treeNodes - removed, tree.NodeCount);
        Assert.Equal(storeNodes - removed, store.NodeCount);
        if (min > 0)
            foreach (var v in TreeSnapshot.Of(tree))
                Assert.True(v.Total >= min || v.Stack.EndsWith("other", StringComparison.Ordinal), $"{v} is below the cut {min}");
    }

    [Theory]
    [MemberData(nameof(SomeCollapsedFiles))]
    public void TruncateMatchesPyroscopeRuleOnRealFiles(string relativePath)
    {
        foreach (long maxNodes in new long[] { 1, 5, 50, 1000 })
        {
            using var store = new TreeStore();
            var (tree, baseline) = Oracles.FromFile(store, Path.Combine(SharedData.TestData, relativePath));
            CheckTruncate(store, tree, baseline, maxNodes);
            // Still a normal tree: inserts after a truncation match the Baseline.
            var after = Oracles.FoldBelow(baseline, Oracles.MinValue(baseline, maxNodes));
            if (Oracles.MinValue(baseline, maxNodes) == 0) after = Oracles.Copy(baseline);
            tree.Insert("other;x", 3);
            after.Insert("other;x", 3);
            TreeSnapshot.AssertSame(after, tree);
        }
    }

    [Fact]
    public void TruncateOnRandomTreesWithExistingOtherNodes()
    {
        var rng = new SplitMix64(77);
        string[] names = ["a", "b", "other", "c", "d", ""];
        for (int round = 0; round < 30; round++)
        {
            using var store = new TreeStore();
            var tree = store.CreateTree();
            var baseline = new BaselineTree();
            int inserts = 1 + (int)rng.NextBelow(300);
            for (int i = 0; i < inserts; i++)
            {
                int depth = 1 + (int)rng.NextBelow(5);
                string key = string.Join(';', Enumerable.Range(0, depth).Select(_ => names[rng.NextBelow((ulong)names.Length)]));
                ulong value = rng.NextBelow(4) == 0 ? 0 : rng.NextBelow(50);
                tree.Insert(key, value);
                baseline.Insert(key, value);
            }
            CheckTruncate(store, tree, baseline, 1 + (long)rng.NextBelow(40));
        }
    }

    [Fact]
    public void TruncateBelowFoldsAndKeepsTotals()
    {
        using var store = new TreeStore();
        var tree = store.CreateTree();
        var baseline = new BaselineTree();
        foreach (var (k, v) in new[] { ("a;b", 10UL), ("a;c", 1UL), ("a;d", 2UL), ("e", 1UL), ("a", 5UL) })
        {
            tree.Insert(k, v);
            baseline.Insert(k, v);
        }
        Assert.Equal(1, tree.TruncateBelow(3)); // c, d and e go, a;other and other come: 5 → 4 nodes
        var nodes = TreeSnapshot.Of(tree);
        Assert.Equal(
            [new("a", 5, 18), new("a;b", 10, 10), new("a;other", 3, 3), new("other", 1, 1)],
            nodes);
        Assert.Equal(19UL, tree.Total);
        Assert.Equal(0, tree.TruncateBelow(0));
    }

    [Theory]
    [MemberData(nameof(SomeCollapsedFiles))]
    public void TopMatchesSortedBaseline(string relativePath)
    {
        using var store = new TreeStore();
        var (tree, baseline) = Oracles.FromFile(store, Path.Combine(SharedData.TestData, relativePath));
        foreach (var by in new[] { TopBy.Self, TopBy.Total })
            foreach (int n in new[] { 0, 1, 10, 100000 })
            {
                var expected = Oracles.Top(baseline, n, by);
                var actual = tree.Top(n, by).Select(e => (TreeSnapshot.Latin1(e.Stack), e.Self, e.Total)).ToList();
                Assert.Equal(expected, actual);
            }
    }

    [Fact]
    public void TopBreaksTiesByStack()
    {
        using var store = new TreeStore();
        var tree = store.CreateTree();
        foreach (var k in new[] { "b", "a;z", "a;y", "c" }) tree.Insert(k, 1);
        Assert.Equal(["a;y", "a;z", "b", "c"], tree.Top(10, TopBy.Self).Select(e => e.StackText));
        Assert.Equal(["a", "a;y"], tree.Top(2, TopBy.Total).Select(e => e.StackText));
    }

    [Fact]
    public void TopEntriesCompareByStackBytes()
    {
        using var store = new TreeStore();
        var tree = store.CreateTree();
        var rng = new Random(13);
        for (int i = 0; i < 500; i++) tree.Insert($"f{rng.Next(8)};g{rng.Next(8)};h{rng.Next(4)}", (ulong)rng.Next(1, 50));
        TopEntry[] first = tree.Top(20, TopBy.Total), second = tree.Top(20, TopBy.Total);
        Assert.Equal(first, second); // two calls, fresh arrays, same entries
        Assert.Equal(first.Length, first.Concat(second).ToHashSet().Count);
        for (int i = 0; i < first.Length; i++)
        {
            Assert.NotSame(first[i].Stack, second[i].Stack);
            Assert.Equal(first[i].GetHashCode(), second[i].GetHashCode());
            var otherStack = first[i] with { Stack = [.. first[i].Stack, (byte)'x'] };
            Assert.NotEqual(first[i], otherStack);
            Assert.NotEqual(first[i], first[i] with { Self = first[i].Self + 1 });
            Assert.NotEqual(first[i], first[i] with { Total = first[i].Total + 1 });
        }
        Assert.Equal(default(TopEntry), new TopEntry([], 0, 0)); // a default entry's null stack reads as empty
    }
}
