using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Engine;

/// <summary>Large stores take their slabs from 2 MiB huge-page blocks; the accounting must stay exact.</summary>
[Collection(nameof(ProcessNativeMemory))]
public class HugePagePoolTests
{
    private static void Fill(ProfileTree tree, int paths, int seed)
    {
        var rng = new ProfileArena.Workloads.SplitMix64((ulong)seed);
        var sink = new ProfileArena.Workloads.ArenaSink(tree);
        ProfileArena.Workloads.TakeHome.GenerateTree(ref rng, paths, 100, ref sink);
    }

    [Fact]
    public void PooledSlabsAreReusedAfterRemoveAndReturnedOnDispose()
    {
        long start = TreeStore.ProcessNativeBytes;
        var store = new TreeStore();
        var keep = store.CreateTree();
        Fill(keep, 300, 1);                      // ≈ 30,000 nodes and names: past the pool's threshold
        var scratch = store.CreateTree();
        Fill(scratch, 200, 2);
        var expected = TreeSnapshot.Of(keep);
        long full = store.NativeBytes;
        Assert.True(full > 8 * 1024 * 1024, $"{full} bytes: the test needs a store past the pool threshold");
        Assert.Equal(start + full, TreeStore.ProcessNativeBytes);

        store.Remove(scratch);                   // its node slabs go back to the pool, still held by the store
        long afterRemove = store.NativeBytes;
        Assert.True(afterRemove <= full);
        var again = store.CreateTree();
        var baseline = new ProfileArena.Baseline.BaselineTree();
        var rng = new ProfileArena.Workloads.SplitMix64(3);
        for (int i = 0; i < 20_000; i++)
        {
            string key = $"r;{rng.NextBelow(50)};{i}";
            again.Insert(key, 1);
            baseline.Insert(key, 1);
        }
        TreeSnapshot.AssertSame(baseline, again);
        Assert.Equal(expected, TreeSnapshot.Of(keep)); // reused slabs never alias live ones
        Assert.Equal(start + store.NativeBytes, TreeStore.ProcessNativeBytes);

        store.Dispose();
        Assert.Equal(start, TreeStore.ProcessNativeBytes);
    }

    [Fact]
    public void PoolBlocksRespectTheBudget()
    {
        using var store = new TreeStore(new TreeStoreOptions { MaxNativeBytes = 7 * 1024 * 1024 });
        var tree = store.CreateTree();
        StoreLimitExceededException? refused = null;
        int paths = 0;
        for (; paths < 1000 && refused == null; paths++)
        {
            long nodes = store.NodeCount;
            try { Fill(tree, 1, 100 + paths); }
            catch (StoreLimitExceededException e) { refused = e; Assert.True(store.NodeCount >= nodes); }
        }
        Assert.NotNull(refused);
        Assert.Equal(StoreLimit.NativeBytes, refused!.Limit);
        Assert.True(store.NativeBytes <= 7 * 1024 * 1024);
        tree.Insert("root", 1); // still usable
    }
}
