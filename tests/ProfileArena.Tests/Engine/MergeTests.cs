using ProfileArena.Baseline;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Engine;

/// <summary>MergeFrom against the Baseline with the source's inserts replayed into the target.</summary>
public class MergeTests
{
    private static List<(byte[] Key, ulong Value)> RandomInserts(ulong seed, int count)
    {
        var rng = new SplitMix64(seed);
        var list = new List<(byte[], ulong)>();
        for (int i = 0; i < count; i++)
        {
            int depth = 1 + (int)rng.NextBelow(6);
            var key = new List<byte>();
            for (int d = 0; d < depth; d++)
            {
                if (d > 0) key.Add((byte)';');
                int len = (int)rng.NextBelow(3);
                for (int j = 0; j < len; j++) key.Add((byte)"xyz\0\xff"[(int)rng.NextBelow(5)]);
            }
            list.Add((key.ToArray(), rng.NextBelow(50)));
        }
        return list;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MergeMatchesReplayingTheSourceInserts(bool acrossStores)
    {
        using var targetStore = new TreeStore();
        using var otherStore = new TreeStore();
        var sourceStore = acrossStores ? otherStore : targetStore;
        var target = targetStore.CreateTree();
        var source = sourceStore.CreateTree();
        var expected = new BaselineTree();
        var expectedSource = new BaselineTree();
        foreach (var (k, v) in RandomInserts(11, 3000)) { target.Insert(k, v); expected.Insert(k, v); }
        foreach (var (k, v) in RandomInserts(12, 3000)) { source.Insert(k, v); expected.Insert(k, v); expectedSource.Insert(k, v); }
        target.MergeFrom(source);
        TreeSnapshot.AssertSame(expected, target);
        TreeSnapshot.AssertSame(expectedSource, source); // the source is only read
        // The target keeps working with its path cache after a merge.
        target.Insert("x;y", 5); expected.Insert("x;y", 5);
        TreeSnapshot.AssertSame(expected, target);
    }

    [Fact]
    public void MergeOfASmallTreeFromAStoreWithManyNamesMatchesReplaying()
    {
        // The source store holds far more names than the merged tree has nodes, so names are mapped per node
        // (not through a map of the whole store's symbols): names shared by several nodes, names new to the
        // target, names the target already has, and a second merge that finds them all.
        using var targetStore = new TreeStore();
        using var sourceStore = new TreeStore();
        ProfileTree bulk = sourceStore.CreateTree();
        for (int i = 0; i < 20_000; i++) bulk.Insert($"bulk;name{i}", 1);
        ProfileTree source = sourceStore.CreateTree();
        ProfileTree target = targetStore.CreateTree();
        var expected = new BaselineTree();
        var expectedSource = new BaselineTree();
        foreach (var (k, v) in RandomInserts(21, 200)) { target.Insert(k, v); expected.Insert(k, v); }
        var sourceInserts = new List<(byte[] Key, ulong Value)>();
        string[] keys = ["new;new;new", "new;name7", "name7;new;x", "y;name19999", "x;y;z", "new", "name7;name7"];
        for (int i = 0; i < keys.Length; i++) sourceInserts.Add((System.Text.Encoding.UTF8.GetBytes(keys[i]), 1 + 2UL * (ulong)i));
        sourceInserts.AddRange(RandomInserts(22, 300));
        foreach (var (k, v) in sourceInserts) { source.Insert(k, v); expectedSource.Insert(k, v); }
        Assert.True(sourceStore.SymbolCount > 4L * source.NodeCount, "the source store must dwarf the tree for this path");

        for (int merge = 0; merge < 2; merge++)
        {
            target.MergeFrom(source);
            foreach (var (k, v) in sourceInserts) expected.Insert(k, v);
            TreeSnapshot.AssertSame(expected, target);
        }
        TreeSnapshot.AssertSame(expectedSource, source);
    }

    [Fact]
    public void MergeOfRealFilesEqualsInsertingBoth()
    {
        string dir = Path.Combine(SharedData.TestData, "collapsed", "inferno", "flamegraph", "multiple-inputs");
        var files = Directory.GetFiles(dir).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(2, files.Length);
        using var store = new TreeStore();
        using var other = new TreeStore();
        var a = store.CreateTree();
        var b = other.CreateTree();
        var expected = new BaselineTree();
        foreach (var (stack, count) in FoldedLines.Read(files[0])) { a.Insert(stack, count); expected.Insert(stack, count); }
        foreach (var (stack, count) in FoldedLines.Read(files[1])) { b.Insert(stack, count); expected.Insert(stack, count); }
        a.MergeFrom(b);
        TreeSnapshot.AssertSame(expected, a);
    }

    [Fact]
    public void MergeIntoItselfDoubles()
    {
        using var store = new TreeStore();
        var tree = store.CreateTree();
        var expected = new BaselineTree();
        foreach (var (k, v) in RandomInserts(5, 500)) { tree.Insert(k, v); expected.Insert(k, v); expected.Insert(k, v); }
        tree.MergeFrom(tree);
        TreeSnapshot.AssertSame(expected, tree);
    }

    [Fact]
    public void CloneIsIndependent()
    {
        using var store = new TreeStore();
        var tree = store.CreateTree();
        tree.Insert("a;b", 1);
        tree.Insert("a;c", 2);
        var copy = tree.Clone();
        Assert.Equal(TreeSnapshot.Of(tree), TreeSnapshot.Of(copy));
        copy.Insert("a;d", 3);
        Assert.Equal(3UL, tree.Total);
        Assert.Equal(6UL, copy.Total);
    }

    /// <summary>A merge into a tree holding only its root copies the source node for node (TreeMerger.CopyIntoEmpty):
    /// the result must be the replayed inserts, and the copy a working tree — its edge index finds every node (inserting
    /// every stack again creates none and doubles every value), and a general merge into it afterwards is exact too.</summary>
    [Theory]
    [InlineData(false, 21UL)]
    [InlineData(true, 22UL)]
    [InlineData(true, 23UL)]
    public void MergeIntoAnEmptyTreeIsACopyThatKeepsWorking(bool acrossStores, ulong seed)
    {
        using var targetStore = new TreeStore();
        using var otherStore = new TreeStore();
        var sourceStore = acrossStores ? otherStore : targetStore;
        targetStore.CreateTree().Insert("names;the;target;has", 1); // some names already there, some new
        var source = sourceStore.CreateTree();
        var expected = new BaselineTree();
        List<(byte[] Key, ulong Value)> inserts = RandomInserts(seed, 4000);
        foreach (var (k, v) in inserts) { source.Insert(k, v); expected.Insert(k, v); }
        var target = targetStore.CreateTree();
        target.MergeFrom(source);
        TreeSnapshot.AssertSame(expected, target);
        Assert.Equal(source.NodeCount, target.NodeCount);
        long nodes = target.NodeCount;
        foreach (var (k, v) in inserts) { target.Insert(k, v); expected.Insert(k, v); }
        Assert.Equal(nodes, target.NodeCount); // every path was found through the copied edge index
        TreeSnapshot.AssertSame(expected, target);
        var more = sourceStore.CreateTree();
        foreach (var (k, v) in RandomInserts(seed + 100, 2000)) { more.Insert(k, v); expected.Insert(k, v); }
        target.MergeFrom(more);
        TreeSnapshot.AssertSame(expected, target);
        // Clone (an empty tree plus the same copy) is independent of its source.
        var clone = target.Clone();
        TreeSnapshot.AssertSame(expected, clone);
        clone.Insert("only;in;clone", 3);
        TreeSnapshot.AssertSame(expected, target);
    }

    [Fact]
    public void RefusedCopyIntoAnEmptyTreeLeavesItAndItsStoreUnchanged()
    {
        using var targetStore = new TreeStore(new TreeStoreOptions { MaxNodes = 50 });
        using var sourceStore = new TreeStore();
        var target = targetStore.CreateTree();
        var source = sourceStore.CreateTree();
        for (int i = 0; i < 60; i++) source.Insert($"a;n{i}", 1);
        long symbols = targetStore.SymbolCount, nodes = targetStore.NodeCount;
        Assert.Equal(StoreLimit.Nodes, Assert.Throws<StoreLimitExceededException>(() => target.MergeFrom(source)).Limit);
        Assert.Equal(1, target.NodeCount);
        Assert.Equal(0UL, target.Total);
        Assert.Equal(symbols, targetStore.SymbolCount);
        Assert.Equal(nodes, targetStore.NodeCount);
        var small = sourceStore.CreateTree();
        small.Insert("a;q", 4);
        target.MergeFrom(small); // still usable, and the copy path again (the tree is still empty)
        Assert.Equal(4UL, target.Total);
        Assert.Equal(3, target.NodeCount);
    }

    [Fact]
    public void RefusedMergeLeavesTargetAndItsStoreUnchanged()
    {
        using var targetStore = new TreeStore(new TreeStoreOptions { MaxNodes = 50 });
        using var sourceStore = new TreeStore();
        var target = targetStore.CreateTree();
        target.Insert("a;b", 1);
        var source = sourceStore.CreateTree();
        for (int i = 0; i < 60; i++) source.Insert($"a;n{i}", 1);
        var before = TreeSnapshot.Of(target);
        long symbols = targetStore.SymbolCount, nodes = targetStore.NodeCount;
        var ex = Assert.Throws<StoreLimitExceededException>(() => target.MergeFrom(source));
        Assert.Equal(StoreLimit.Nodes, ex.Limit);
        Assert.Equal(before, TreeSnapshot.Of(target));
        Assert.Equal(symbols, targetStore.SymbolCount);
        Assert.Equal(nodes, targetStore.NodeCount);

        var big = sourceStore.CreateTree();
        big.Insert("a", ulong.MaxValue);
        Assert.Throws<OverflowException>(() => target.MergeFrom(big));
        Assert.Equal(before, TreeSnapshot.Of(target));

        var small = sourceStore.CreateTree();
        small.Insert("a;q", 4);
        target.MergeFrom(small); // still usable
        Assert.Equal(5UL, target.Total);
    }

    [Fact]
    public void MergeAfterDisposeOfEitherStoreThrows()
    {
        var a = new TreeStore();
        using var b = new TreeStore();
        var ta = a.CreateTree();
        var tb = b.CreateTree();
        a.Dispose();
        Assert.Throws<ObjectDisposedException>(() => tb.MergeFrom(ta));
        Assert.Throws<ObjectDisposedException>(() => ta.MergeFrom(tb));
        Assert.Throws<InvalidOperationException>(() => tb.MergeFrom(default));
    }
}
