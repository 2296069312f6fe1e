using ProfileArena.Baseline;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Engine;

/// <summary>Iterate caches its visit order per tree; the cache must never be stale or required.</summary>
public class IterationPlanTests
{
    [Fact]
    public void PlanIsKeptUntilAWriteAndRebuiltAfter()
    {
        using var store = new TreeStore();
        var tree = store.CreateTree();
        var baseline = new BaselineTree();
        for (int i = 0; i < 2000; i++) { tree.Insert($"a;b{i % 50};c{i}", 1); baseline.Insert($"a;b{i % 50};c{i}", 1); }
        long before = store.NativeBytes;
        TreeSnapshot.AssertSame(baseline, tree);
        long withPlan = store.NativeBytes;
        Assert.True(withPlan > before, "the first Iterate keeps a plan in the store");
        TreeSnapshot.AssertSame(baseline, tree);
        Assert.Equal(withPlan, store.NativeBytes); // reused, not rebuilt

        tree.Insert("a;b1;c1", 5); baseline.Insert("a;b1;c1", 5);     // value only
        TreeSnapshot.AssertSame(baseline, tree);
        tree.Insert("a;new;x", 0); baseline.Insert("a;new;x", 0);     // value 0, new nodes
        TreeSnapshot.AssertSame(baseline, tree);
        var other = store.CreateTree();
        other.Insert("a;b1;c1", 7); baseline.Insert("a;b1;c1", 7);
        tree.MergeFrom(other);
        TreeSnapshot.AssertSame(baseline, tree);
    }

    [Fact]
    public void IterateWorksWhenTheBudgetHasNoRoomForAPlan()
    {
        var probe = new TreeStore();
        var t = probe.CreateTree();
        for (int i = 0; i < 3000; i++) t.Insert($"x;y{i}", 1);
        long needed = probe.NativeBytes;
        probe.Dispose();

        using var store = new TreeStore(new TreeStoreOptions { MaxNativeBytes = needed + 64 * 1024 });
        var tree = store.CreateTree();
        var baseline = new BaselineTree();
        for (int i = 0; i < 3000; i++) { tree.Insert($"x;y{i}", 1); baseline.Insert($"x;y{i}", 1); }
        long held = store.NativeBytes;
        TreeSnapshot.AssertSame(baseline, tree);   // the plan (≈ 192 KB) does not fit: built as scratch
        TreeSnapshot.AssertSame(baseline, tree);
        Assert.Equal(held, store.NativeBytes);
    }

    [Fact]
    public async Task ConcurrentReadersShareOrBuildPlansSafely()
    {
        using var store = new TreeStore();
        var tree = store.CreateTree();
        var baseline = new BaselineTree();
        for (int i = 0; i < 5000; i++) { tree.Insert($"r;{i % 97};{i % 13};{i}", 1); baseline.Insert($"r;{i % 97};{i % 13};{i}", 1); }
        var expected = TreeSnapshot.Of(baseline);
        var tasks = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (int round = 0; round < 20; round++) Assert.Equal(expected, TreeSnapshot.Of(tree));
        })).ToArray();
        await Task.WhenAll(tasks);
    }
}
