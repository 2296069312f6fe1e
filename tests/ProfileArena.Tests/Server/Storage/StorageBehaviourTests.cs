using System.Text;
using ProfileArena.Server.Storage;
using ProfileArena.Server.Storage.Wal;
using static ProfileArena.Tests.Server.Storage.StorageTestKit;

namespace ProfileArena.Tests.Server.Storage;

/// <summary>Levels, retention, the native budget, tenant isolation, calls spanning shards, bucket math.</summary>
public class StorageBehaviourTests
{
    private const long T0 = 1_700_000_000; // a multiple of 10^5 s: level-aligned up to level 4

    [Fact]
    public async Task ADayOfTenSecondBucketsIsReadFromLogarithmicallyManyTrees()
    {
        using var dir = new TempDataDir();
        using var storage = await OpenAsync(Options(dir.Path));
        SeriesKey series = Key("acme", "app.cpu");
        var model = new ReferenceModel();
        var profiles = new List<IngestProfile>();
        for (long t = T0; t < T0 + 25 * 3600; t += 10)
        {
            IngestProfile p = Profile(series, t, ($"main;f{t % 7}", (ulong)(t % 13 + 1)));
            profiles.Add(p);
            model.Add(p);
        }
        await storage.IngestAsync(profiles, TestContext.Current.CancellationToken);
        foreach (long from in new[] { T0 + 5, T0 + 1234, T0 + 3600 })
        {
            long until = from + 86400;
            var stacks = QueryStacks(storage, "acme", Selector("app.cpu"), from, until, out QueryResult result);
            AssertSame(model.Query("acme", Selector("app.cpu"), from, until), stacks, $"[{from}, {until})");
            // 8,640 ten-second buckets in range; at most 9 pieces per level on each side.
            Assert.InRange(result.TreesMerged, 1, 18 * storage.Options.Levels);
            Assert.Equal((long)model.Total("acme", Selector("app.cpu"), from, until), result.Timeline.Samples.Sum());
        }
        Assert.True(storage.TreesMergedByQueries <= 3 * 18 * storage.Options.Levels);
    }

    [Fact]
    public void DecomposeCoversTheRangeExactlyWithMaximalAlignedBuckets()
    {
        var random = new Random(7);
        for (int i = 0; i < 2000; i++)
        {
            long from = BucketMath.Floor(random.NextInt64(-1_000_000, 10_000_000), 0);
            long until = from + BucketMath.Resolution * random.NextInt64(1, 200_000);
            int levels = random.Next(1, 8);
            var pieces = BucketMath.Decompose(from, until, levels);
            long t = from;
            foreach (var (level, start) in pieces)
            {
                Assert.Equal(t, start);
                Assert.Equal(start, BucketMath.Floor(start, level));
                Assert.InRange(level, 0, levels - 1);
                t += BucketMath.Size(level);
            }
            Assert.Equal(until, t);
            Assert.True(pieces.Count <= 18 * levels + (until - from) / BucketMath.Size(levels - 1), $"{pieces.Count} pieces");
            for (int level = 0; level < levels; level++) Assert.True(pieces.Count(p => p.Level == level) <= 18 || level == levels - 1);
        }
    }

    [Fact]
    public async Task RetentionRemovesExpiredTreesReturnsTheirMemoryAndFallsBackToCoarserLevels()
    {
        using var dir = new TempDataDir();
        var clock = new ManualClock(T0 - 7200); // at ingest every bucket is still kept
        // 10 s buckets kept 1 h, 100 s buckets 1 day, coarser forever.
        StorageOptions options = Options(dir.Path, retention: [3600, 86400]);
        var storage = await OpenAsync(options, clock);
        SeriesKey series = Key("acme", "app.cpu", ("env", "prod"));
        SeriesSelector all = Selector("app.cpu");
        var model = new ReferenceModel();
        var profiles = new List<IngestProfile>();
        var random = new Random(3);
        for (long t = T0 - 7200; t < T0; t += 10)
        {
            IngestProfile p = RandomProfile(random, series, t);
            profiles.Add(p);
            model.Add(p);
        }
        await storage.IngestAsync(profiles, TestContext.Current.CancellationToken);
        StorageStats before = storage.Stats();

        clock.Now = T0;
        await storage.RemoveExpiredAsync();
        StorageStats after = storage.Stats();
        Assert.True(after.Trees < before.Trees - 300, $"{before.Trees} → {after.Trees} trees");
        Assert.True(after.NativeBytes < before.NativeBytes, $"{before.NativeBytes} → {after.NativeBytes} native bytes");
        Assert.True(after.Nodes < before.Nodes);

        // The expired hour is now served from 100 s buckets: ranges aligned to 100 s stay exact.
        foreach (var (from, until) in new[] { (T0 - 7200, T0), (T0 - 7000, T0 - 3700), (T0 - 3600, T0 - 50) })
            AssertSame(model.Query("acme", all, from, until), QueryStacks(storage, "acme", all, from, until, out _), $"[{from}, {until})");
        // An unaligned old range widens to the 100 s buckets holding it.
        AssertSame(model.Query("acme", all, T0 - 7000, T0 - 6900), QueryStacks(storage, "acme", all, T0 - 6990, T0 - 6950, out _), "widened");

        // Removed slots are reused: ingesting the same amount again takes no more trees than before.
        clock.Now = T0 + 2 * 86400;
        await storage.RemoveExpiredAsync();
        StorageStats coarse = storage.Stats();
        Assert.True(coarse.Trees < after.Trees);
        AssertSame(model.Query("acme", all, T0 - 10000, T0), QueryStacks(storage, "acme", all, T0 - 10000, T0, out _), "1000 s buckets only");

        // Replay after a crash applies the same retention: same trees, same answers.
        storage.Dispose();
        storage = await OpenAsync(options, clock);
        Assert.Equal(coarse.Trees, storage.Stats().Trees);
        AssertSame(model.Query("acme", all, T0 - 10000, T0), QueryStacks(storage, "acme", all, T0 - 10000, T0, out _), "after replay");
        storage.Dispose();
    }

    [Fact]
    public async Task AtTheBudgetIngestIsRefusedQueriesWorkAndNothingStoredIsLost()
    {
        using var dir = new TempDataDir();
        const long budget = 3 << 20;
        StorageOptions options = Options(dir.Path, budget: budget);
        var storage = await OpenAsync(options);
        var model = new ReferenceModel();
        SeriesKey series = Key("acme", "app.cpu");
        StorageFullException? full = null;
        for (int call = 0; call < 2000 && full == null; call++)
        {
            var batch = new StackBatch();
            for (int i = 0; i < 50; i++) batch.Add(Encoding.UTF8.GetBytes($"main;handler_{call}_{i};some_rather_long_function_name_{call * 50 + i}"), 1);
            var p = new IngestProfile(series, T0 + call, T0 + call + 10, SeriesMetadata.Default, batch);
            try
            {
                await storage.IngestAsync([p], TestContext.Current.CancellationToken);
                model.Add(p);
            }
            catch (StorageFullException e)
            {
                full = e;
            }
        }
        Assert.NotNull(full);
        Assert.Contains("Storage:MaxNativeBytes", full.Message);
        // The budget is checked before each write against held bytes plus an estimate; one admitted write can pass
        // it by what its tables' doublings take (symbol hash table, edge indexes), never by more.
        long held = storage.Stats().NativeBytes;
        Assert.True(held <= budget * 3 / 2, $"{held} bytes held");
        Assert.True(held >= budget / 2, $"refused early: {held} bytes held");
        AssertSame(model.Query("acme", Selector("app.cpu"), T0, T0 + 3000), QueryStacks(storage, "acme", Selector("app.cpu"), T0, T0 + 3000, out _), "when full");
        storage.Dispose();

        storage = await OpenAsync(options);
        AssertSame(model.Query("acme", Selector("app.cpu"), T0, T0 + 3000), QueryStacks(storage, "acme", Selector("app.cpu"), T0, T0 + 3000, out _), "after restart");
        await Assert.ThrowsAsync<StorageFullException>(() => storage.IngestAsync([Profile(series, T0, ("main;" + new string('x', 100_000), 1))], TestContext.Current.CancellationToken).AsTask());
        storage.Dispose();
    }

    [Fact]
    public async Task TenantsSeeOnlyTheirOwnSeriesAndHostileNamesStayInsideTheDataDirectory()
    {
        using var dir = new TempDataDir();
        string[] tenants = ["acme", "ACME", "../evil", "a/b", "", "con", new string('t', 300), "x\0y", "üñï"];
        StorageOptions options = Options(dir.Path);
        var storage = await OpenAsync(options);
        var model = new ReferenceModel();
        for (int i = 0; i < tenants.Length; i++)
        {
            IngestProfile p = Profile(Key(tenants[i], "app.cpu", ("env", "prod")), T0, ($"main;only_{i}", (ulong)i + 1));
            await storage.IngestAsync([p], TestContext.Current.CancellationToken);
            model.Add(p);
        }
        for (int round = 0; round < 2; round++)
        {
            for (int i = 0; i < tenants.Length; i++)
            {
                var stacks = QueryStacks(storage, tenants[i], Selector("app.cpu"), T0, T0 + 10, out QueryResult result);
                Assert.Equal(new Dictionary<string, ulong> { [$"main;only_{i}"] = (ulong)i + 1 }, stacks);
                Assert.Equal(1, result.Series);
                Assert.Equal(tenants[i], Assert.Single(storage.Series(tenants[i], null, T0, T0 + 10)).Tenant);
            }
            Assert.Empty(storage.Series("nobody", null, T0, T0 + 10));
            storage.Dispose();
            storage = await OpenAsync(options);
        }
        storage.Dispose();
        foreach (string d in Directory.EnumerateDirectories(dir.Path))
            Assert.Matches("^[th]-[a-z0-9_%A-F-]*$", Path.GetFileName(d));
        Assert.Equal(tenants.Length, Directory.EnumerateDirectories(dir.Path).Count());
        Assert.False(Directory.Exists(Path.Combine(Path.GetDirectoryName(dir.Path)!, "evil")));
    }

    /// <summary>Two series of one call in different shards: shard B refuses its part (a bucket total would
    /// overflow), so shard A's prepared part is dropped too — in memory and after replay.</summary>
    [Fact]
    public async Task ACallSpanningShardsIsAllOrNothing()
    {
        using var dir = new TempDataDir();
        StorageOptions options = Options(dir.Path, shards: 8);
        SeriesKey a = Key("acme", "one.cpu");
        SeriesKey b = Enumerable.Range(0, 100).Select(i => Key("acme", $"other{i}.cpu")).First(k => ProfileStorage.ShardNumber(k, 8) != ProfileStorage.ShardNumber(a, 8));
        var model = new ReferenceModel();
        var storage = await OpenAsync(options);
        IngestProfile big = Profile(b, T0, ("main;big", ulong.MaxValue - 10));
        await storage.IngestAsync([big], TestContext.Current.CancellationToken);
        model.Add(big);

        await Assert.ThrowsAsync<OverflowException>(() => storage.IngestAsync([Profile(a, T0, ("main;a", 5)), Profile(b, T0, ("main;b", 100))], TestContext.Current.CancellationToken).AsTask());
        Assert.Empty(QueryStacks(storage, "acme", Selector("one.cpu"), T0, T0 + 10, out _));

        // A WAL failure in shard B only: A's prepared part is aborted.
        string shardB = Path.Combine(dir.Path, "t-acme", $"shard-{ProfileStorage.ShardNumber(b, 8)}");
        WalLog.FailWritesForTests[shardB + Path.DirectorySeparatorChar] = 0;
        try
        {
            await Assert.ThrowsAsync<StorageUnavailableException>(() => storage.IngestAsync([Profile(a, T0, ("main;a2", 5)), Profile(b, T0 + 20, ("main;b2", 1))], TestContext.Current.CancellationToken).AsTask());
        }
        finally
        {
            WalLog.FailWritesForTests.TryRemove(shardB + Path.DirectorySeparatorChar, out _);
        }
        Assert.Empty(QueryStacks(storage, "acme", Selector("one.cpu"), T0, T0 + 10, out _));

        // And a good call spanning both shards lands in both.
        IngestProfile goodA = Profile(a, T0 + 30, ("main;good", 1)), goodB = Profile(b, T0 + 30, ("main;good", 2));
        await storage.IngestAsync([goodA, goodB], TestContext.Current.CancellationToken);
        model.Add(goodA);
        model.Add(goodB);
        storage.Dispose();

        storage = await OpenAsync(options);
        foreach (string name in new[] { "one.cpu", b.Name })
            AssertSame(model.Query("acme", Selector(name), T0, T0 + 100), QueryStacks(storage, "acme", Selector(name), T0, T0 + 100, out _), name);
        storage.Dispose();
    }

    [Fact]
    public async Task IngestAndQueryBeforeReplayOrAfterStopAreRefusedClearly()
    {
        using var dir = new TempDataDir();
        var storage = new ProfileStorage(Options(dir.Path));
        Assert.False(storage.IsReady);
        var e = await Assert.ThrowsAsync<StorageUnavailableException>(() => storage.IngestAsync([Profile(Key("a", "x.cpu"), T0, ("m", 1))], TestContext.Current.CancellationToken).AsTask());
        Assert.Contains("replaying", e.Message);
        await storage.OpenAsync(TestContext.Current.CancellationToken);
        await Assert.ThrowsAsync<ArgumentException>(() => storage.IngestAsync([new IngestProfile(Key("a", "x.cpu"), T0, T0 - 1, SeriesMetadata.Default, new StackBatch())], TestContext.Current.CancellationToken).AsTask());
        await storage.StopAsync();
        Assert.False(storage.IsReady);
        await Assert.ThrowsAsync<StorageUnavailableException>(() => storage.IngestAsync([Profile(Key("a", "x.cpu"), T0, ("m", 1))], TestContext.Current.CancellationToken).AsTask());
        storage.Dispose();
    }

    [Fact]
    public async Task MillisecondsAreRefusedAndHugeQueryRangesAreClamped()
    {
        using var dir = new TempDataDir();
        using var storage = await OpenAsync(Options(dir.Path));
        var e = await Assert.ThrowsAsync<ArgumentException>(() => storage.IngestAsync([Profile(Key("a", "x.cpu"), T0 * 1000, ("m", 1))], TestContext.Current.CancellationToken).AsTask());
        Assert.Contains("unix seconds", e.Message);
        await storage.IngestAsync([Profile(Key("a", "x.cpu"), T0, ("m", 1))], TestContext.Current.CancellationToken);
        var stacks = QueryStacks(storage, "a", Selector("x.cpu"), long.MinValue, long.MaxValue, out QueryResult result);
        Assert.Equal(new Dictionary<string, ulong> { ["m"] = 1 }, stacks);
        Assert.Equal(1, result.Timeline.Samples.Sum());
        Assert.Single(storage.Series("a", null, long.MinValue, long.MaxValue));
    }

    [Fact]
    public async Task MetadataIsTheLastDeclaredAndSurvivesRestart()
    {
        using var dir = new TempDataDir();
        var storage = await OpenAsync(Options(dir.Path));
        SeriesKey series = Key("acme", "app.alloc_space");
        var batch = new StackBatch();
        batch.Add("main;alloc"u8, 4096);
        await storage.IngestAsync([new IngestProfile(series, T0, T0 + 10, new SeriesMetadata("nodespy", 100, "bytes", "sum"), batch)], TestContext.Current.CancellationToken);
        await storage.SnapshotAsync();
        await storage.IngestAsync([new IngestProfile(series, T0 + 10, T0 + 20, new SeriesMetadata("nodespy", 99, "bytes", "average"), batch)], TestContext.Current.CancellationToken);
        storage.Dispose();
        storage = await OpenAsync(Options(dir.Path));
        QueryStacks(storage, "acme", Selector("app.alloc_space"), T0, T0 + 20, out QueryResult result);
        Assert.Equal(new SeriesMetadata("nodespy", 99, "bytes", "average"), result.Metadata);
        QueryStacks(storage, "acme", Selector("nothing.cpu"), T0, T0 + 20, out result);
        Assert.Equal(SeriesMetadata.Default, result.Metadata);
        Assert.Equal(0, result.Series);
        storage.Dispose();
    }
}
