using ProfileArena.Server.Storage;
using static ProfileArena.Tests.Server.Storage.StorageTestKit;

namespace ProfileArena.Tests.Server.Storage;

/// <summary>The storage against <see cref="ReferenceModel"/>: random ingests at random times, random query
/// ranges and selectors, merged results compared exactly; again after a restart from the WAL alone and after a
/// restart from a snapshot plus more WAL.</summary>
public class StorageDifferentialTests
{
    private const long T0 = 1_700_000_003; // not aligned to any level

    private static readonly SeriesKey[] SeriesKeys =
    [
        Key("acme", "shop.cpu", ("env", "prod"), ("region", "eu-1")),
        Key("acme", "shop.cpu", ("env", "dev"), ("region", "eu-2")),
        Key("acme", "shop.alloc_space", ("env", "prod"), ("region", "eu-1")),
        Key("acme", "cart.cpu"),
        Key("globex", "shop.cpu", ("env", "prod"), ("region", "eu-1")),
        Key("globex", "shop.cpu", ("env", "stage")),
    ];

    private static SeriesSelector RandomSelector(Random random)
    {
        string name = random.Next(4) switch { 0 => "shop.alloc_space", 1 => "cart.cpu", _ => "shop.cpu" };
        var matchers = new List<LabelMatcher>();
        switch (random.Next(6))
        {
            case 0: matchers.Add(new LabelMatcher("env", MatchOp.Equal, "prod")); break;
            case 1: matchers.Add(new LabelMatcher("env", MatchOp.NotEqual, "prod")); break;
            case 2: matchers.Add(new LabelMatcher("region", MatchOp.Regex, "eu-.*")); break;
            case 3: matchers.Add(new LabelMatcher("region", MatchOp.NotRegex, "eu-1")); break;
        }
        return new SeriesSelector(name, matchers);
    }

    private static async Task IngestRandom(ProfileStorage storage, ReferenceModel model, Random random, int calls, long span)
    {
        for (int c = 0; c < calls; c += 4)
        {
            // Four calls in flight at once: they share group commits and run in different shards in parallel.
            var batch = new List<List<IngestProfile>>();
            for (int k = 0; k < 4; k++)
            {
                int n = random.Next(1, 4);
                SeriesKey series = SeriesKeys[random.Next(SeriesKeys.Length)];
                // Usually one series' sample types of one upload; sometimes several series (possibly spanning shards and tenants).
                batch.Add([.. Enumerable.Range(0, n).Select(_ => RandomProfile(random, random.Next(3) == 0 ? SeriesKeys[random.Next(SeriesKeys.Length)] : series, T0 + random.NextInt64(span)))]);
            }
            await Task.WhenAll(batch.Select(b => storage.IngestAsync(b, TestContext.Current.CancellationToken).AsTask()));
            foreach (var p in batch.SelectMany(b => b)) model.Add(p);
        }
    }

    private static void CompareRandomQueries(ProfileStorage storage, ReferenceModel model, Random random, int queries, long span)
    {
        for (int q = 0; q < queries; q++)
        {
            string tenant = random.Next(3) == 0 ? "globex" : "acme";
            SeriesSelector selector = RandomSelector(random);
            long from = T0 - 100 + random.NextInt64(span + 200);
            long until = random.Next(5) == 0 ? from + random.Next(0, 40) : from + random.NextInt64(span);
            var stored = QueryStacks(storage, tenant, selector, from, until, out QueryResult result);
            string context = $"query {q}: {tenant} {selector.Name}{{{string.Join(",", selector.Matchers)}}} [{from}, {until})";
            AssertSame(model.Query(tenant, selector, from, until), stored, context);
            Assert.Equal(model.Series(tenant, selector, from, until).Count, result.Series);
            Assert.Equal(model.Series(tenant, selector, from, until), storage.Series(tenant, selector, from, until));
            // Timeline: each step holds the sum of the buckets it covers.
            var (f, u) = BucketMath.Normalize(from, until);
            Assert.Equal(f, result.Timeline.StartTime);
            for (int i = 0; i < result.Timeline.Samples.Length; i++)
            {
                long s = f + i * result.Timeline.DurationDelta;
                Assert.Equal((long)model.Total(tenant, selector, s, Math.Min(s + result.Timeline.DurationDelta, u)), result.Timeline.Samples[i]);
            }
            // O(log range): at most 9 pieces per level on each side of the range, per matching series.
            Assert.True(result.TreesMerged <= Math.Max(1, result.Series) * 18 * storage.Options.Levels, $"{context}: {result.TreesMerged} trees merged");
        }
    }

    [Fact]
    public async Task RandomIngestsAndQueriesMatchTheReferenceAcrossRestarts()
    {
        using var dir = new TempDataDir();
        var random = new Random(20261129);
        var model = new ReferenceModel();
        const long span = 3 * 86400;
        StorageOptions options = Options(dir.Path);

        var storage = await OpenAsync(options);
        await IngestRandom(storage, model, random, 160, span);
        CompareRandomQueries(storage, model, random, 120, span);
        storage.Dispose(); // like a crash: no snapshot, only the WAL

        storage = await OpenAsync(options);
        CompareRandomQueries(storage, model, random, 60, span);
        await storage.SnapshotAsync();
        await IngestRandom(storage, model, random, 80, span);
        storage.Dispose(); // snapshot + more WAL

        storage = await OpenAsync(options);
        CompareRandomQueries(storage, model, random, 60, span);
        await storage.StopAsync(); // clean stop: snapshot of every shard, WAL retired
        storage.Dispose();

        storage = await OpenAsync(options);
        CompareRandomQueries(storage, model, random, 60, span);
        Assert.Equal(model.AllSeries.Count(), (int)storage.Stats().Series);
        storage.Dispose();
    }
}
