using ProfileArena.Baseline;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Engine;

public class LifecycleTests
{
    [Fact]
    public void RemoveFreesMemoryAndStaleHandlesNeverAliasTheReusedSlot()
    {
        using var store = new TreeStore();
        var keep = store.CreateTree();
        // Intern every name first (names are the store's, not the tree's, and stay interned).
        for (int i = 0; i < 5000; i++) keep.Insert($"x;{i};y", 1);
        long keepNodes = keep.NodeCount;
        long before = store.NativeBytes;
        var doomed = store.CreateTree();
        for (int i = 0; i < 5000; i++) doomed.Insert($"x;{i};y", 1);
        Assert.True(store.NativeBytes > before + 100_000);
        Assert.Equal(2, store.TreeCount);
        store.Remove(doomed);
        Assert.Equal(before, store.NativeBytes); // every byte the removed tree held is back
        Assert.Equal(1, store.TreeCount);
        Assert.Equal(keepNodes, store.NodeCount);

        var reused = store.CreateTree();
        Assert.Equal(doomed.Id, reused.Id); // the slot is reused...
        Assert.NotEqual(doomed, reused);    // ...under a new generation
        var e = Assert.Throws<InvalidOperationException>(() => doomed.Insert("a", 1));
        Assert.Contains("removed", e.Message);
        Assert.Throws<InvalidOperationException>(() => doomed.Total);
        Assert.Throws<InvalidOperationException>(() => doomed.NodeCount);
        Assert.Throws<InvalidOperationException>(() => doomed.Iterate((_, _, _) => { }));
        Assert.Throws<InvalidOperationException>(() => doomed.Top(3, TopBy.Self));
        Assert.Throws<InvalidOperationException>(() => doomed.Clear());
        Assert.Throws<InvalidOperationException>(() => store.Remove(doomed));
        Assert.Throws<InvalidOperationException>(() => reused.MergeFrom(doomed));
        Assert.Throws<InvalidOperationException>(() => doomed.MergeFrom(reused));
        Assert.Equal(0UL, reused.Total);
        Assert.Equal(1, reused.NodeCount);
        reused.Insert("n", 2);
        Assert.Equal(["n"], TreeSnapshot.Of(reused).Select(n => n.Stack));
        Assert.Equal([keep, reused], store.GetTrees());
        Assert.Equal(reused, store.GetTree(reused.Id));
        Assert.Throws<ArgumentException>(() => store.GetTree(7));

        using var other = new TreeStore();
        Assert.Throws<ArgumentException>(() => other.Remove(keep));
    }

    [Fact]
    public void ClearEmptiesTheTreeAndKeepsItUsable()
    {
        using var store = new TreeStore();
        var t = store.CreateTree();
        for (int i = 0; i < 3000; i++) t.Insert($"a;{i}", 2);
        long full = store.NativeBytes;
        t.Clear();
        Assert.Equal(0UL, t.Total);
        Assert.Equal(1, t.NodeCount);
        Assert.Equal(1, store.NodeCount);
        Assert.Empty(TreeSnapshot.Of(t));
        Assert.True(store.NativeBytes < full);
        var baseline = new BaselineTree();
        foreach (var k in new[] { "a;1", "a;1;b", "c" }) { t.Insert(k, 4); baseline.Insert(k, 4); }
        TreeSnapshot.AssertSame(baseline, t);
    }

    [Fact]
    public void VisitorCannotRemoveClearOrTruncateItsTree()
    {
        using var store = new TreeStore();
        var t = store.CreateTree();
        t.Insert("a;b", 1);
        t.Iterate((_, _, _) =>
        {
            Assert.Throws<InvalidOperationException>(() => store.Remove(t));
            Assert.Throws<InvalidOperationException>(() => t.Clear());
            Assert.Throws<InvalidOperationException>(() => t.Truncate(1));
            Assert.Single(t.Top(1, TopBy.Total)); // reading is fine
        });
        Assert.Equal(3, t.NodeCount);
    }

    [Fact]
    public void StaleHandleIsRejectedEvenInsideAVisitorOfTheReusedSlot()
    {
        using var store = new TreeStore();
        var old = store.CreateTree();
        store.Remove(old);
        var current = store.CreateTree();
        Assert.Equal(old.Id, current.Id);
        current.Insert("a", 1);
        current.Iterate((_, _, _) =>
        {
            Assert.Throws<InvalidOperationException>(() => old.Iterate((_, _, _) => { }));
            Assert.Throws<InvalidOperationException>(() => old.Top(1, TopBy.Self));
            Assert.Throws<InvalidOperationException>(() => old.Total);
        });
    }

    [Fact]
    public void OperationsOverTheNativeBudgetChangeNothing()
    {
        using var store = new TreeStore(new TreeStoreOptions { MaxNativeBytes = 200_000 });
        var t = store.CreateTree();
        int i = 0;
        ulong sum = 0;
        Assert.Throws<StoreLimitExceededException>((Action)(() => { for (; ; i++) { t.Insert($"f{i};g{i};h{i}", (ulong)(i % 7 + 1)); sum += (ulong)(i % 7 + 1); } }));
        var before = TreeSnapshot.Of(t);
        long nodes = store.NodeCount;
        // A truncation builds its new slabs beside the old ones: here they do not fit, and nothing changes.
        var e = Assert.Throws<StoreLimitExceededException>(() => t.Truncate(t.NodeCount / 2));
        Assert.Equal(StoreLimit.NativeBytes, e.Limit);
        Assert.Equal(before, TreeSnapshot.Of(t));
        Assert.Equal(nodes, store.NodeCount);
        Assert.Equal(sum, t.Total);
        Assert.True(store.NativeBytes <= 200_000);
        // Clear always fits (it frees first when it must).
        t.Clear();
        Assert.Equal(1, store.NodeCount);
    }
}
