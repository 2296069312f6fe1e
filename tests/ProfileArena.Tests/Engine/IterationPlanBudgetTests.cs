using ProfileArena.Baseline;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Engine;

public class IterationPlanBudgetTests
{
    [Fact]
    public void CachedPlansNeverTakeTheStorePastThreeQuartersOfItsBudget()
    {
        const long budget = 6 * 1024 * 1024;
        using var store = new TreeStore(new TreeStoreOptions { MaxNativeBytes = budget });
        var tree = store.CreateTree();
        int i = 0, reads = 0;
        StoreLimitExceededException? refused = null;
        while (refused == null)
        {
            try
            {
                for (int k = 0; k < 2000; k++) tree.Insert($"main;w{i % 300};leaf{i++}", 1);
            }
            catch (StoreLimitExceededException e) { refused = e; }
            long before = store.NativeBytes;
            Assert.Equal(tree.NodeCount - 1, TreeSnapshot.Of(tree).Count); // reading always works
            reads++;
            long after = store.NativeBytes;
            Assert.True(after == before || after <= budget / 4 * 3,
                $"a cached plan took the store from {before} to {after} bytes, past 3/4 of {budget}");
        }
        Assert.Equal(StoreLimit.NativeBytes, refused.Limit);
        Assert.True(reads > 3);
    }
}
