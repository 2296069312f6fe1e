using System.Text;
using ProfileArena.Server.Cluster;
using ProfileArena.Server.Storage;
using ProfileArena.Server.Storage.Media;
using ProfileArena.Tests.Server.Storage;

namespace ProfileArena.Tests.Server.Cluster;

/// <summary>
/// Shards as Orleans grains in an in-process cluster of three silos over one data directory: routing by the
/// single server's shard hash, fan-out queries equal (byte for byte, as the HTTP layer renders them) to the single
/// node's on the same random ingests, and a shard's data surviving deactivation, a move and a killed silo.
/// </summary>
public sealed class ShardGrainClusterTests
{
    private const long T0 = 1_795_950_000;
    private static readonly string[] Tenants = ["acme", "x/shard-1/y"]; // a tenant whose name looks like a grain key
    private static readonly string[] Names = ["api.cpu", "api.alloc_space", "db.cpu", "web.front.cpu"];

    /// <summary>Random ingest calls: 1–4 profiles each (often of series in different shards, so a call spans
    /// shards: prepare/commit), across both tenants; one profile of 3,000 distinct stacks whose payload and partial
    /// trees pass the 64 KiB message piece and travel in pieces.</summary>
    private static List<IngestProfile[]> RandomCalls(int seed, int count)
    {
        var random = new Random(seed);
        var calls = new List<IngestProfile[]>();
        for (int c = 0; c < count; c++)
        {
            string tenant = Tenants[random.Next(Tenants.Length)];
            calls.Add([.. Enumerable.Range(0, random.Next(1, 5)).Select(_ =>
            {
                var labels = new List<(string, string)> { ("env", random.Next(2) == 0 ? "prod" : "dev") };
                if (random.Next(2) == 0) labels.Add(("region", random.Next(2) == 0 ? "eu-1" : "us-2"));
                SeriesKey key = StorageTestKit.Key(tenant, Names[random.Next(Names.Length)], [.. labels]);
                return StorageTestKit.RandomProfile(random, key, T0 + random.Next(0, 3600));
            })]);
        }
        var big = new StackBatch();
        for (int i = 0; i < 3000; i++) big.Add(Encoding.UTF8.GetBytes($"main;handler{i % 50};leaf-function-number-{i}"), (ulong)(i + 1));
        calls.Add([new IngestProfile(StorageTestKit.Key("acme", "api.cpu", ("env", "prod")), T0 + 1234, T0 + 1244, SeriesMetadata.Default, big)]);
        return calls;
    }

    private static IEnumerable<SeriesSelector> Selectors(string name) =>
    [
        StorageTestKit.Selector(name),
        StorageTestKit.Selector(name, new LabelMatcher("env", MatchOp.Equal, "prod")),
        StorageTestKit.Selector(name, new LabelMatcher("region", MatchOp.Regex, "eu.*")),
        StorageTestKit.Selector(name, new LabelMatcher("env", MatchOp.NotEqual, "dev"), new LabelMatcher("region", MatchOp.NotRegex, "us.*")),
    ];

    private static readonly (long From, long Until)[] Ranges = [(T0, T0 + 3640), (T0 + 600, T0 + 1800), (T0 - 200_000, T0 + 200_000), (T0 + 5000, T0 + 6000)];

    private static async Task IngestAll(IProfileStorage storage, List<IngestProfile[]> calls, Func<int, IProfileStorage>? through = null)
    {
        for (int i = 0; i < calls.Count; i++) await (through?.Invoke(i) ?? storage).IngestAsync(calls[i], TestContext.Current.CancellationToken);
    }

    /// <summary>Every answer the HTTP layer builds, for every tenant, name, selector and range.</summary>
    private static async Task<List<string>> Answers(Func<int, IProfileStorage> storage, bool full = true)
    {
        var answers = new List<string>();
        int q = 0;
        foreach (string tenant in Tenants.Append("nobody"))
        {
            foreach (string name in Names.Append("missing.cpu"))
            {
                // The recovery checks ask fewer (two selectors, two ranges): each answer costs a fan-out.
                foreach (SeriesSelector selector in Selectors(name).Take(full ? 4 : 2))
                {
                    foreach (var (from, until) in Ranges.Take(full ? Ranges.Length : 2))
                        answers.Add($"{tenant} {name} {from}-{until}\n" + await QueryBytes.Render(storage(q++), tenant, selector, from, until));
                    answers.Add(await QueryBytes.Series(storage(q++), tenant, selector, T0 - 100, T0 + 4000));
                }
                answers.Add(await QueryBytes.Diff(storage(q++), tenant, StorageTestKit.Selector(name), StorageTestKit.Selector(name), T0, T0 + 1800, T0 + 3640));
            }
            answers.Add(await QueryBytes.Series(storage(q++), tenant, null, 0, T0 + 10_000));
        }
        return answers;
    }

    private static void AssertSameAnswers(List<string> expected, List<string> actual, string context)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            if (expected[i] != actual[i]) Assert.Fail($"{context}: answer {i} differs.\nsingle node:\n{expected[i]}\ncluster:\n{actual[i]}");
        }
    }

    [Fact]
    public async Task FanOutQueriesEqualTheSingleNodeOnRandomIngests()
    {
        List<IngestProfile[]> calls = RandomCalls(seed: 15, count: 60);
        try
        {
            using var singleDir = new TempDataDir();
            using ProfileStorage single = await StorageTestKit.OpenAsync(StorageTestKit.Options(singleDir.Path, shards: 4));
            await IngestAll(single, calls);
            List<string> expected = await Answers(_ => single);
            Assert.Contains(expected, a => a.Contains("leaf-function-number-2999", StringComparison.Ordinal)); // the big profile is queried

            await using ShardCluster cluster = await ShardCluster.Start();
            // Writes arrive at every silo in turn, queries too: routing does not depend on the receiving silo.
            await IngestAll(null!, calls, i => cluster.Storage(i % 3));
            List<string> actual = await Answers(q => cluster.Storage((q + 1) % 3));
            AssertSameAnswers(expected, actual, "fan-out vs single node");
        }
        finally
        {
            foreach (IngestProfile p in calls.SelectMany(c => c)) p.Stacks.Dispose();
        }
    }

    [Fact]
    public async Task EachSeriesLivesInTheGrainItsShardHashNamesAndCallsSpanningGrainsAreAllOrNothing()
    {
        List<IngestProfile[]> calls = RandomCalls(seed: 7, count: 40);
        try
        {
            // Partial trees capped at 1,000 nodes: the big profile's shard refuses (→ 413 in the HTTP layer).
            await using ShardCluster cluster = await ShardCluster.Start(shards: 5, maxPartialNodes: 1000);
            await IngestAll(null!, calls, i => cluster.Storage(i % 3));
            var expected = calls.SelectMany(c => c).Select(p => p.Series).Distinct()
                .GroupBy(s => ShardGrainKey.For(s.Tenant, ProfileStorage.ShardNumber(s, 5)))
                .ToDictionary(g => g.Key, g => g.Select(s => s.ToString()).Order(StringComparer.Ordinal).ToList());
            foreach (string tenant in Tenants)
            {
                for (int n = 0; n < 5; n++)
                {
                    string key = ShardGrainKey.For(tenant, n);
                    ShardSeriesReply reply = await cluster.Grain(key).Series(new ShardSeriesQuery(null, [], 0, T0 + 10_000, T0));
                    Assert.Equal(ShardOutcomeKind.Ok, reply.Outcome.Kind);
                    WireSeries[] held = reply.Series;
                    List<string> actual = [.. held.Select(s => WireCodec.Key(tenant, s).ToString()).Order(StringComparer.Ordinal)];
                    Assert.Equal(expected.GetValueOrDefault(key) ?? [], actual);
                    // A shard exists on the medium exactly for the shards that were written.
                    Assert.Equal(expected.ContainsKey(key), ShardMedia.Create(cluster.Options).ExistingShardNumbers(tenant).Contains(n));
                }
            }
            // Each active shard is registered on exactly one silo.
            foreach (string key in expected.Keys)
                Assert.Single(cluster.Silos, s => ShardCluster.Local(s).Keys.Contains(key));

            // The partial cap: the shard holding 3,000 distinct stacks refuses with the engine's limit exception,
            // the same type the single node's destination store throws; a small query still answers.
            using var store = new TreeStore();
            var limit = await Assert.ThrowsAsync<StoreLimitExceededException>(async () =>
                await cluster.Storage(1).QueryAsync("acme", StorageTestKit.Selector("api.cpu"), T0, T0 + 3640, store.CreateTree(), cancellationToken: TestContext.Current.CancellationToken));
            Assert.Equal(1000, limit.LimitValue);
            QueryResult small = await cluster.Storage(2).QueryAsync("acme", StorageTestKit.Selector("db.cpu"), T0, T0 + 3640, store.CreateTree(), cancellationToken: TestContext.Current.CancellationToken);
            Assert.True(small.Series > 0);

            // A call spanning two shard grains, refused by one (its bucket total would pass 2^64 − 1): the prepared
            // part of the other is aborted, neither stores anything, and the refusal is the single node's exception.
            SeriesKey first = StorageTestKit.Key("acme", "huge.cpu");
            SeriesKey second = Enumerable.Range(0, 100).Select(i => StorageTestKit.Key("acme", $"other{i}.cpu"))
                .First(k => ProfileStorage.ShardNumber(k, 5) != ProfileStorage.ShardNumber(first, 5));
            IngestProfile nearMax = StorageTestKit.Profile(first, T0 + 7000, ("a", ulong.MaxValue - 10));
            IngestProfile over = StorageTestKit.Profile(first, T0 + 7000, ("a", 100)), fine = StorageTestKit.Profile(second, T0 + 7000, ("b", ulong.MaxValue - 10));
            IngestProfile again = StorageTestKit.Profile(first, T0 + 7000, ("a", 1));
            try
            {
                await cluster.Storage(0).IngestAsync([nearMax], TestContext.Current.CancellationToken);
                await Assert.ThrowsAsync<OverflowException>(async () => await cluster.Storage(1).IngestAsync([fine, over], TestContext.Current.CancellationToken));
                QueryResult none = await cluster.Storage(2).QueryAsync("acme", StorageTestKit.Selector(second.Name), T0, T0 + 8000, store.CreateTree(), cancellationToken: TestContext.Current.CancellationToken);
                Assert.Equal(0, none.Series);
                // The aborted part is gone for good, its reservation too (else this bucket would be near 2^64 twice):
                // the next spanning call commits both parts.
                await cluster.Storage(1).IngestAsync([fine, again], TestContext.Current.CancellationToken);
                ProfileTree both = store.CreateTree();
                await cluster.Storage(0).QueryAsync("acme", StorageTestKit.Selector(second.Name), T0, T0 + 8000, both, cancellationToken: TestContext.Current.CancellationToken);
                Assert.Equal(ulong.MaxValue - 10, both.Total);
                ProfileTree nearly = store.CreateTree();
                await cluster.Storage(0).QueryAsync("acme", StorageTestKit.Selector(first.Name), T0, T0 + 8000, nearly, cancellationToken: TestContext.Current.CancellationToken);
                Assert.Equal(ulong.MaxValue - 9, nearly.Total);
            }
            finally
            {
                foreach (IngestProfile p in new[] { nearMax, over, fine, again }) p.Stacks.Dispose();
            }
        }
        finally
        {
            foreach (IngestProfile p in calls.SelectMany(c => c)) p.Stacks.Dispose();
        }
    }

    [Fact]
    public async Task ShardDataComesBackAfterDeactivationAMoveAndAKilledSilo()
    {
        List<IngestProfile[]> calls = RandomCalls(seed: 21, count: 30);
        List<IngestProfile[]> later = RandomCalls(seed: 22, count: 10);
        try
        {
            using var singleDir = new TempDataDir();
            using ProfileStorage single = await StorageTestKit.OpenAsync(StorageTestKit.Options(singleDir.Path, shards: 4));
            await IngestAll(single, calls);
            List<string> expected = await Answers(_ => single, full: false);

            await using ShardCluster cluster = await ShardCluster.Start();
            await IngestAll(null!, calls, i => cluster.Storage(i % 3));
            string[] keys = [.. Tenants.SelectMany(t => Enumerable.Range(0, 4).Select(n => ShardGrainKey.For(t, n))).Where(k => cluster.SiloOf(k) != null)];
            Assert.NotEmpty(keys);

            // 1. Every shard grain deactivated (snapshot at deactivation), then reactivated by the queries.
            foreach (string key in keys) await cluster.Cluster.DeactivateAsync(cluster.Grain(key));
            Assert.All(keys, k => Assert.Null(cluster.SiloOf(k)));
            AssertSameAnswers(expected, await Answers(q => cluster.Storage(q % 3), full: false), "after deactivation");

            // 2. One shard moved to another silo.
            string moved = keys[0];
            var from = cluster.SiloOf(moved)!;
            var to = cluster.Silos.First(s => s != from);
            await cluster.Cluster.MigrateAsync(cluster.Grain(moved), to.SiloAddress);
            await WaitUntil(() => cluster.SiloOf(moved) == to, $"{moved} to reach {to.SiloAddress}");
            AssertSameAnswers(expected, await Answers(q => cluster.Storage(q % 3), full: false), "after a move");

            // 3. More acknowledged writes (in the WAL only: no snapshot since), then the silo holding a shard is
            // killed (no deactivation code runs); the shard comes back on a surviving silo from its files.
            await IngestAll(single, later);
            await IngestAll(null!, later, i => cluster.Storage(i % 3));
            expected = await Answers(_ => single, full: false);
            var victim = cluster.Silos.Skip(1).FirstOrDefault(s => keys.Any(k => cluster.SiloOf(k) == s));
            if (victim is null)
            {
                await cluster.Cluster.MigrateAsync(cluster.Grain(moved), cluster.Silos[1].SiloAddress);
                await WaitUntil(() => cluster.SiloOf(moved) == cluster.Silos[1], "a shard on a secondary silo");
                victim = cluster.Silos[1];
            }
            string[] lost = [.. keys.Where(k => cluster.SiloOf(k) == victim)];
            await cluster.Cluster.KillSiloAsync(victim, TestContext.Current.CancellationToken);
            List<string> survivors = [];
            await WaitUntil(async () =>
            {
                try
                {
                    survivors = await Answers(_ => cluster.Storage(0), full: false);
                    return true;
                }
                catch (StorageUnavailableException)
                {
                    return false; // calls to the dead silo fail until membership declares it dead
                }
            }, "queries to succeed after the kill");
            AssertSameAnswers(expected, survivors, "after a killed silo");
            Assert.All(lost, k => Assert.NotEqual(victim, cluster.SiloOf(k)));
        }
        finally
        {
            foreach (IngestProfile p in calls.Concat(later).SelectMany(c => c)) p.Stacks.Dispose();
        }
    }

    private static Task WaitUntil(Func<bool> condition, string what) => WaitUntil(() => Task.FromResult(condition()), what);

    private static async Task WaitUntil(Func<Task<bool>> condition, string what)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 600 && clock.Elapsed < TimeSpan.FromSeconds(45); i++)
        {
            if (await condition()) return;
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
        Assert.Fail($"timed out waiting for {what}");
    }
}
