using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.Runtime.Placement;
using Orleans.TestingHost;
using ProfileArena.Server.Cluster;
using ProfileArena.Server.Storage;
using ProfileArena.Tests.Server.Storage;

namespace ProfileArena.Tests.Server.Cluster;

/// <summary>
/// Placement and rebalancing of shard grains by storage bytes (native bytes of the arena stores, which Orleans'
/// own statistics do not see), in an in-process cluster of three silos over one data directory. Silos refresh each
/// other's figures every 0.1 s here (tests wait for refresh rounds, never for time).
/// </summary>
public sealed class ShardPlacementClusterTests
{
    private const long T0 = 1_795_950_000;
    private static readonly string[] Tenants = ["acme", "x/shard-1/y"];

    /// <summary>Profiles of <paramref name="series"/> series of <paramref name="tenant"/>, each with wide random stacks, so
    /// that the shards' stores grow well past their empty size and differ little from one another.</summary>
    private static List<IngestProfile> Profiles(string tenant, int seed, int series, int perSeries)
    {
        var random = new Random(seed);
        var profiles = new List<IngestProfile>();
        for (int s = 0; s < series; s++)
        {
            SeriesKey key = StorageTestKit.Key(tenant, $"svc{s % 7}.cpu", ("pod", $"p{s}"), ("env", s % 3 == 0 ? "prod" : "dev"));
            for (int p = 0; p < perSeries; p++)
            {
                var batch = new StackBatch();
                for (int i = 0; i < 40; i++)
                    batch.Add(Encoding.UTF8.GetBytes($"main;svc{s};handler{random.Next(30)};fn{random.Next(400)};leaf{random.Next(1000)}"), (ulong)random.Next(1, 10_000));
                long at = T0 + random.Next(0, 3600);
                profiles.Add(new IngestProfile(key, at, at + 10, new SeriesMetadata("gospy", 100, "samples", "sum"), batch));
            }
        }
        return profiles;
    }

    private static async Task Ingest(IProfileStorage storage, List<IngestProfile> profiles)
    {
        foreach (IngestProfile p in profiles) await storage.IngestAsync([p], TestContext.Current.CancellationToken);
    }

    /// <summary>Activates every shard grain of <paramref name="tenant"/> on <paramref name="silo"/> (an explicit placement
    /// hint, as a migration gives one), before anything is written.</summary>
    private static async Task PlaceOn(ShardCluster cluster, string tenant, int shards, InProcessSiloHandle silo)
    {
        for (int n = 0; n < shards; n++)
        {
            RequestContext.Set(IPlacementDirector.PlacementHintKey, silo.SiloAddress);
            try
            {
                ShardPlace place = await cluster.Grain(ShardGrainKey.For(tenant, n)).Locate();
                Assert.Equal(silo.SiloAddress, place.Silo);
            }
            finally
            {
                RequestContext.Remove(IPlacementDirector.PlacementHintKey);
            }
        }
    }

    /// <summary>The silo's storage bytes once every write acknowledged so far is applied (writes are acknowledged
    /// before they are applied; Stats waits for them as a query does).</summary>
    private static long Bytes(InProcessSiloHandle silo)
    {
        ShardCluster.Local(silo).Stats();
        return ShardCluster.Local(silo).Load().BudgetBytes;
    }

    private static string Figures(ShardCluster cluster) =>
        string.Join(", ", cluster.Silos.Select(s => $"{s.SiloAddress}: {Bytes(s):N0} B in {ShardCluster.Local(s).Keys.Count} shards, {ShardCluster.Rebalancer(s).Moves} moves"));

    /// <summary>Waits until every silo has completed <paramref name="rounds"/> more refreshes of its figures (so each holds
    /// figures asked for after this call).</summary>
    private static async Task WaitRounds(ShardCluster cluster, int rounds)
    {
        int[] start = [.. cluster.Silos.Select(s => ShardCluster.Table(s).Rounds)];
        await WaitUntil(() => cluster.Silos.Select((s, i) => ShardCluster.Table(s).Rounds >= start[i] + rounds).All(x => x), $"{rounds} refresh rounds on every silo");
    }

    /// <summary>Render (JSON with timeline, folded, top functions) and series answers for both tenants.</summary>
    private static Task<List<string>> Answers(ShardCluster cluster) => Answers(q => cluster.Storage(q % 3));

    private static async Task<List<string>> Answers(Func<int, IProfileStorage> storage)
    {
        var answers = new List<string>();
        int q = 0;
        foreach (string tenant in Tenants)
        {
            for (int n = 0; n < 7; n++)
            {
                foreach (SeriesSelector selector in new[]
                         {
                             StorageTestKit.Selector($"svc{n}.cpu"),
                             StorageTestKit.Selector($"svc{n}.cpu", new LabelMatcher("env", MatchOp.Equal, "prod")),
                         })
                {
                    foreach (var (from, until) in new[] { (T0, T0 + 3640), (T0 + 600, T0 + 1800) })
                        answers.Add($"{tenant} {selector} {from}-{until}\n" + await QueryBytes.Render(storage(q++), tenant, selector, from, until));
                }
            }
            answers.Add(await QueryBytes.Series(storage(q++), tenant, null, 0, T0 + 10_000));
        }
        return answers;
    }

    [Fact]
    public async Task NewShardsGoToTheSiloHoldingTheFewestStorageBytes()
    {
        await using ShardCluster cluster = await ShardCluster.Start(shards: 8, configure: o =>
        {
            o.LoadRefreshSeconds = 0.1;
            o.RebalanceIntervalSeconds = 0;
        });
        var (heavy, medium, light) = (cluster.Silos[0], cluster.Silos[1], cluster.Silos[2]);
        List<IngestProfile> big = Profiles("acme", seed: 1, series: 24, perSeries: 6), small = Profiles("x/shard-1/y", seed: 2, series: 1, perSeries: 2);
        try
        {
            await PlaceOn(cluster, "acme", 8, heavy);
            await PlaceOn(cluster, "x/shard-1/y", 8, medium);
            await Ingest(cluster.Storage(1), big);
            await Ingest(cluster.Storage(2), small);
            long heavyBytes = Bytes(heavy), mediumBytes = Bytes(medium);
            Assert.True(mediumBytes > 0 && heavyBytes > 4 * mediumBytes && Bytes(light) == 0, Figures(cluster));
            await WaitRounds(cluster, 3);

            // New shards (a tenant never written), activated by calls starting on each silo in turn: the calling silo
            // places them. Its first goes to the empty silo; none goes to the silo holding the most bytes (each
            // placement counts as one shard of the mean size until the next figures, so the medium silo may get some).
            var landed = new List<(int From, SiloAddress At)>();
            for (int k = 0; k < 12; k++)
            {
                IGrainFactory grains = cluster.Silos[k % 3].ServiceProvider.GetRequiredService<IGrainFactory>();
                ShardPlace place = await grains.GetGrain<IShardGrain>(ShardGrainKey.For("fresh", k)).Locate();
                Assert.Equal(0, place.Bytes);
                landed.Add((k % 3, place.Silo));
            }
            string where = string.Join(", ", landed.Select(l => $"from {l.From} → {l.At}"));
            Assert.True(landed.Take(3).All(l => l.At.Equals(light.SiloAddress)), $"first placements not on the empty silo {light.SiloAddress}: {where}; {Figures(cluster)}");
            Assert.True(landed.All(l => !l.At.Equals(heavy.SiloAddress)), $"a new shard went to the heaviest silo {heavy.SiloAddress}: {where}; {Figures(cluster)}");
            // The heavy shards did not move (rebalancing is off here).
            Assert.Equal(heavyBytes, Bytes(heavy));
        }
        finally
        {
            foreach (IngestProfile p in big.Concat(small)) p.Stacks.Dispose();
        }
    }

    [Fact]
    public async Task RebalancingMovesShardsOffAHeavySiloUntilWithinTheLineAndEveryAnswerStaysTheSame()
    {
        const int shards = 8;
        await using ShardCluster cluster = await ShardCluster.Start(shards: shards, configure: o =>
        {
            o.LoadRefreshSeconds = 0.1;
            o.RebalanceIntervalSeconds = 0.2;
            o.RebalanceThresholdRatio = 0.25;
            o.RebalanceMinBytes = long.MaxValue / 4; // held back until the data is in and the answers taken
        });
        InProcessSiloHandle heavy = cluster.Silos[0];
        List<IngestProfile> profiles = [.. Profiles(Tenants[0], seed: 3, series: 30, perSeries: 4), .. Profiles(Tenants[1], seed: 4, series: 20, perSeries: 4)];
        List<IngestProfile> during = Profiles(Tenants[0], seed: 6, series: 30, perSeries: 2); // written while shards move
        try
        {
            foreach (string tenant in Tenants) await PlaceOn(cluster, tenant, shards, heavy);
            await Ingest(cluster.Storage(1), profiles);
            string[] keys = [.. ShardCluster.Local(heavy).Keys.Order(StringComparer.Ordinal)];
            Assert.True(keys.Length >= 12, $"only {keys.Length} shards written");
            Assert.All(cluster.Silos.Skip(1), s => Assert.Equal(0, Bytes(s)));
            List<string> before = await Answers(cluster);
            Assert.Contains(before, a => a.Contains("leaf", StringComparison.Ordinal));
            long total = Bytes(heavy);

            // The line at the mean + 25 %: the heavy silo is far over it and moves one shard per period.
            cluster.ClusterOptions.RebalanceMinBytes = 0;
            // Writes to the moving tenant go on meanwhile, through every silo: each must be acknowledged (Orleans holds
            // a call to a moving shard and delivers it to the new activation) and be in the answers afterwards.
            // Paced by the moves: after every 10 writes the next move is awaited (bounded; the rebalancing may be done),
            // so the writes interleave with moves, and some meet a shard while it moves.
            int Moves() => cluster.Silos.Sum(s => ShardCluster.Rebalancer(s).Moves);
            for (int i = 0; i < during.Count; i++)
            {
                await cluster.Storage(i % 3).IngestAsync([during[i]], TestContext.Current.CancellationToken);
                if (i % 10 != 9) continue;
                int seen = Moves();
                for (int w = 0; w < 100 && Moves() == seen; w++) await Task.Delay(50, TestContext.Current.CancellationToken);
            }
            int movesDuringWrites = Moves();
            Assert.True(movesDuringWrites >= 2, $"only {movesDuringWrites} moves while the writes went on: {Figures(cluster)}");
            await WaitUntil(() =>
            {
                // Settled: every shard open on exactly one silo (none in the middle of a move) and no silo over the line.
                if (!keys.All(k => cluster.Silos.Count(s => ShardCluster.Local(s).Keys.Contains(k)) == 1)) return false;
                long[] bytes = [.. cluster.Silos.Select(Bytes)];
                return bytes.Max() <= RebalancePlan.Line(bytes, 0.25, 0);
            }, () => $"every silo within 25 % of the mean: {Figures(cluster)}");
            int moves = Moves();
            Assert.True(moves >= 2, $"{moves} moves: {Figures(cluster)}");
            Assert.All(cluster.Silos, s => Assert.NotEmpty(ShardCluster.Local(s).Keys));
            long[] settled = [.. cluster.Silos.Select(Bytes)];

            // Every answer of the tenant not written meanwhile equals the answer before the moves, byte for byte; every
            // answer equals the single node's on the same writes (those before the moves and those during them).
            List<string> after = await Answers(cluster);
            Assert.Equal(before.Count, after.Count);
            for (int i = 0; i < before.Count; i++)
            {
                if (before[i].StartsWith(Tenants[1] + " ", StringComparison.Ordinal) && before[i] != after[i])
                    Assert.Fail($"answer {i} changed by the moves.\nbefore:\n{before[i]}\nafter:\n{after[i]}");
            }
            using (var singleDir = new TempDataDir())
            using (ProfileStorage single = await StorageTestKit.OpenAsync(StorageTestKit.Options(singleDir.Path, shards)))
            {
                await Ingest(single, [.. profiles, .. during]);
                List<string> expected = await Answers(_ => single);
                for (int i = 0; i < expected.Count; i++)
                {
                    if (expected[i] != after[i]) Assert.Fail($"answer {i} after the moves differs from the single node's.\nsingle node:\n{expected[i]}\ncluster:\n{after[i]}");
                }
                Assert.Contains(expected.Zip(before), p => p.First != p.Second); // the writes during the moves are in the answers
            }

            // Settled means settled: more checks on fresh figures move nothing (no shard goes back and forth).
            await WaitRounds(cluster, 8);
            Assert.Equal(moves, cluster.Silos.Sum(s => ShardCluster.Rebalancer(s).Moves));
            Assert.Equal(settled, cluster.Silos.Select(Bytes).ToArray());
            TestContext.Current.TestOutputHelper?.WriteLine($"{total:N0} B on one silo → {Figures(cluster)}");
        }
        finally
        {
            foreach (IngestProfile p in profiles.Concat(during)) p.Stacks.Dispose();
        }
    }

    [Fact]
    public async Task WithRebalancingOffNothingMoves()
    {
        const int shards = 8;
        await using ShardCluster cluster = await ShardCluster.Start(shards: shards, configure: o =>
        {
            o.LoadRefreshSeconds = 0.1;
            o.RebalanceIntervalSeconds = 0;
            o.RebalanceMinBytes = 0;
        });
        InProcessSiloHandle heavy = cluster.Silos[0];
        List<IngestProfile> profiles = Profiles(Tenants[0], seed: 5, series: 30, perSeries: 3);
        try
        {
            await PlaceOn(cluster, Tenants[0], shards, heavy);
            await Ingest(cluster.Storage(2), profiles);
            string[] keys = [.. ShardCluster.Local(heavy).Keys];
            long bytes = Bytes(heavy);
            // The same figures with rebalancing on would move a shard (what the enabled test sees).
            var figures = cluster.Silos.Select(s => (s.SiloAddress, Bytes(s), 0L)).ToList();
            Assert.NotNull(RebalancePlan.Choose(heavy.SiloAddress, figures, ShardCluster.Local(heavy).Sizes(), cluster.ClusterOptions.RebalanceThresholdRatio, 0));

            await WaitRounds(cluster, 20);
            Assert.Equal(keys.Order(StringComparer.Ordinal), ShardCluster.Local(heavy).Keys.Order(StringComparer.Ordinal));
            Assert.Equal(bytes, Bytes(heavy));
            Assert.All(cluster.Silos, s => Assert.Equal(0, ShardCluster.Rebalancer(s).Moves));
            Assert.All(cluster.Silos.Skip(1), s => Assert.Empty(ShardCluster.Local(s).Keys));
        }
        finally
        {
            foreach (IngestProfile p in profiles) p.Stacks.Dispose();
        }
    }

    private static Task WaitUntil(Func<bool> condition, string what) => WaitUntil(condition, () => what);

    private static async Task WaitUntil(Func<bool> condition, Func<string> what)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 1200 && clock.Elapsed < TimeSpan.FromSeconds(90); i++)
        {
            if (condition()) return;
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        Assert.Fail($"timed out waiting for {what()}");
    }
}
