using ProfileArena.Baseline;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Engine;

/// <summary>
/// <see cref="ProfileTree.MergeTruncated"/> against two references: the Baseline sum of the same keys cut by the
/// plain oracle (<see cref="Oracles.MinValue"/>, <see cref="Oracles.FoldBelow"/>), and the engine's own
/// MergeFrom-then-Truncate of the same sources.
/// </summary>
public class MergeTruncatedTests
{
    /// <summary>Checks the sum of <paramref name="sources"/> (whose keys, summed, are <paramref name="sum"/>) cut to
    /// <paramref name="maxNodes"/>, written into a tree of <paramref name="targetStore"/>.</summary>
    private static void Check(TreeStore targetStore, ProfileTree[] sources, BaselineTree sum, long maxNodes)
    {
        ulong min = Oracles.MinValue(sum, maxNodes);
        BaselineTree expected = min == 0 ? Oracles.Copy(sum) : Oracles.FoldBelow(sum, min);

        ProfileTree actual = targetStore.CreateTree();
        actual.MergeTruncated(sources, maxNodes);
        TreeSnapshot.AssertSame(expected, actual);

        using var merged = new TreeStore();
        ProfileTree viaMerge = merged.CreateTree();
        foreach (ProfileTree source in sources) viaMerge.MergeFrom(source);
        viaMerge.Truncate(maxNodes);
        Assert.Equal(TreeSnapshot.Of(viaMerge), TreeSnapshot.Of(actual));
        Assert.Equal(viaMerge.NodeCount, actual.NodeCount);
        targetStore.Remove(actual);
    }

    [Fact]
    public void Random_sources_in_several_stores_match_the_merge_then_truncate()
    {
        var rng = new SplitMix64(2026_11_30);
        // "other" (kept whatever its total, receives the fold), "" (empty names, also at depth 1) and shared prefixes.
        string[] names = ["a", "b", "other", "c", "d", "", "ab", "a;b"];
        for (int round = 0; round < 300; round++)
        {
            using var storeA = new TreeStore();
            using var storeB = new TreeStore();
            TreeStore[] stores = [storeA, storeB];
            int count = 1 + (int)rng.NextBelow(5);
            var sources = new ProfileTree[count];
            var sum = new BaselineTree();
            for (int t = 0; t < count; t++)
            {
                sources[t] = stores[rng.NextBelow(2)].CreateTree();
                int inserts = (int)rng.NextBelow(rng.NextBelow(4) == 0 ? 5UL : 200UL);
                for (int i = 0; i < inserts; i++)
                {
                    int depth = 1 + (int)rng.NextBelow(6);
                    string key = string.Join(';', Enumerable.Range(0, depth).Select(_ => names[rng.NextBelow((ulong)names.Length)]));
                    ulong value = rng.NextBelow(5) == 0 ? 0 : 1 + rng.NextBelow(rng.NextBelow(3) == 0 ? 1000UL : 20UL);
                    sources[t].Insert(key, value);
                    sum.Insert(key, value);
                }
            }
            long maxNodes = 1 + (long)rng.NextBelow(rng.NextBelow(3) == 0 ? 400UL : 40UL);
            // The target in a store of its own, or beside some of the sources.
            Check(rng.NextBelow(3) == 0 ? storeA : storeB, sources, sum, maxNodes);
        }
    }

    [Fact]
    public void Real_profiles_split_into_pieces_match_the_merge_then_truncate()
    {
        string[] files = [.. SharedData.Files("collapsed").Where((_, i) => i % 3 == 0).Take(6)];
        Assert.NotEmpty(files);
        var rng = new SplitMix64(7);
        foreach (string file in files)
        {
            // Each line to one of four trees (two stores), as a query's pieces hold parts of one program.
            using var storeA = new TreeStore();
            using var storeB = new TreeStore();
            ProfileTree[] sources = [storeA.CreateTree(), storeB.CreateTree(), storeA.CreateTree(), storeB.CreateTree()];
            var sum = new BaselineTree();
            foreach (string line in File.ReadLines(file))
            {
                int space = line.LastIndexOf(' ');
                if (space <= 0 || !ulong.TryParse(line.AsSpan(space + 1), out ulong value)) continue;
                string key = line[..space];
                sources[rng.NextBelow(4)].Insert(key, value);
                sum.Insert(key, value);
            }
            foreach (long maxNodes in new long[] { 1, 16, 1024 })
            {
                using var target = new TreeStore();
                Check(target, sources, sum, maxNodes);
            }
        }
    }

    [Fact]
    public void A_store_that_keeps_totals_gives_the_same_sums_across_writes_and_frees_them_with_its_trees()
    {
        var rng = new SplitMix64(41);
        using var kept = new TreeStore(new TreeStoreOptions { KeepSubtreeTotals = true });
        using var plain = new TreeStore();
        ProfileTree a = kept.CreateTree(), b = kept.CreateTree(), c = plain.CreateTree();
        var sum = new BaselineTree();
        string[] names = ["x", "y", "z", "other", "w"];
        long before = kept.NativeBytes;
        for (int round = 0; round < 40; round++)
        {
            // Between sums: writes to one source, to another, or none (the kept totals are then read as they are).
            int writes = (int)rng.NextBelow(3) == 0 ? 0 : 1 + (int)rng.NextBelow(20);
            for (int i = 0; i < writes; i++)
            {
                string key = string.Join(';', Enumerable.Range(0, 1 + (int)rng.NextBelow(4)).Select(_ => names[rng.NextBelow((ulong)names.Length)]));
                ulong value = rng.NextBelow(30);
                (rng.NextBelow(3) switch { 0 => a, 1 => b, _ => c }).Insert(key, value);
                sum.Insert(key, value);
            }
            using var target = new TreeStore();
            Check(target, [a, b, c], sum, 1 + (long)rng.NextBelow(12));
        }
        // The kept blocks are the store's (8 bytes a node at least) and go with the trees.
        Assert.True(kept.NativeBytes >= before + 8 * (a.NodeCount + b.NodeCount), $"{kept.NativeBytes} bytes after keeping totals, {before} before");
        long withTotals = kept.NativeBytes;
        kept.Remove(a);
        kept.Remove(b);
        Assert.True(kept.NativeBytes <= withTotals - 8 * 2, "removing the trees freed their kept totals");
    }

    [Fact]
    public void No_sources_and_empty_sources_give_an_empty_tree()
    {
        using var store = new TreeStore();
        ProfileTree target = store.CreateTree();
        target.MergeTruncated([], 10);
        Assert.Equal(1, target.NodeCount);
        target.MergeTruncated([store.CreateTree(), store.CreateTree()], 10);
        Assert.Equal(1, target.NodeCount);
        Assert.Equal(0UL, target.Total);
    }

    [Fact]
    public void Refuses_a_target_with_nodes_or_among_the_sources_and_a_total_past_2_64()
    {
        using var store = new TreeStore();
        ProfileTree a = store.CreateTree(), b = store.CreateTree(), target = store.CreateTree();
        a.Insert("x;y", ulong.MaxValue - 1);
        b.Insert("x", 2);
        Assert.Throws<ArgumentException>(() => a.MergeTruncated([b], 5));
        Assert.Throws<ArgumentException>(() => target.MergeTruncated([a, target], 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => target.MergeTruncated([a], 0));
        Assert.Throws<OverflowException>(() => target.MergeTruncated([a, b], 5));
        Assert.Equal(1, target.NodeCount); // left empty
        // The sources are untouched and their locks released: a write goes through.
        a.Insert("z", 1);
        Assert.Equal(ulong.MaxValue, a.Total);
    }
}
