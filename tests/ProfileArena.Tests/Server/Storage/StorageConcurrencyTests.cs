using ProfileArena.Server.Storage;
using static ProfileArena.Tests.Server.Storage.StorageTestKit;

namespace ProfileArena.Tests.Server.Storage;

/// <summary>Ingest, queries and snapshots in parallel threads (bounded counts): queries never fail and only
/// ever see values that the final state holds at least as large; the final state matches the reference.</summary>
public class StorageConcurrencyTests
{
    private const long T0 = 1_700_000_000;

    [Fact]
    public async Task ConcurrentCallsShareFsyncs()
    {
        using var dir = new TempDataDir();
        using var storage = await OpenAsync(Options(dir.Path, shards: 1));
        var model = new ReferenceModel();
        var random = new Random(5);
        var calls = Enumerable.Range(0, 64).Select(i => RandomProfile(random, Key("acme", "app.cpu", ("pod", $"p{i % 4}")), T0 + i)).ToList();
        await Task.WhenAll(calls.Select(p => storage.IngestAsync([p], TestContext.Current.CancellationToken).AsTask()));
        foreach (IngestProfile p in calls) model.Add(p);
        var (records, syncs) = storage.WalWrites;
        Assert.Equal(64, records);
        Assert.True(syncs < records, $"{syncs} fsyncs for {records} records");
        AssertSame(model.Query("acme", Selector("app.cpu"), T0, T0 + 100), QueryStacks(storage, "acme", Selector("app.cpu"), T0, T0 + 100, out _), "grouped");
    }

    [Fact]
    public async Task IngestQueriesAndSnapshotsRunInParallel()
    {
        using var dir = new TempDataDir();
        StorageOptions options = Options(dir.Path, shards: 4);
        var storage = await OpenAsync(options);
        SeriesKey[] series = [.. Enumerable.Range(0, 6).Select(i => Key("acme", $"app{i % 3}.cpu", ("pod", $"p{i}")))];
        var models = new ReferenceModel[3];
        int writersLeft = 3;
        var observed = new System.Collections.Concurrent.ConcurrentBag<(string Name, Dictionary<string, ulong> Stacks)>();

        Task[] writers = [.. Enumerable.Range(0, 3).Select(w => Task.Run(async () =>
        {
            var random = new Random(100 + w);
            var model = models[w] = new ReferenceModel();
            for (int call = 0; call < 60; call++)
            {
                IngestProfile p = RandomProfile(random, series[random.Next(series.Length)], T0 + random.Next(0, 7200));
                await storage.IngestAsync([p], TestContext.Current.CancellationToken);
                lock (model) model.Add(p);
            }
            Interlocked.Decrement(ref writersLeft);
        }, TestContext.Current.CancellationToken))];
        Task[] readers = [.. Enumerable.Range(0, 2).Select(r => Task.Run(() =>
        {
            var random = new Random(200 + r);
            for (int q = 0; q < 400 && Volatile.Read(ref writersLeft) > 0; q++)
            {
                string name = $"app{random.Next(3)}.cpu";
                var stacks = QueryStacks(storage, "acme", Selector(name), T0, T0 + 7200, out QueryResult result);
                Assert.True(result.Timeline.Samples.All(s => s >= 0));
                observed.Add((name, stacks));
                storage.Series("acme", null, T0, T0 + 7200);
                storage.Stats();
            }
        }, TestContext.Current.CancellationToken))];
        Task snapshots = Task.Run(async () =>
        {
            for (int i = 0; i < 5 && Volatile.Read(ref writersLeft) > 0; i++)
            {
                await storage.SnapshotAsync();
                await storage.RemoveExpiredAsync();
                await Task.Delay(20, TestContext.Current.CancellationToken);
            }
        }, TestContext.Current.CancellationToken);
        await Task.WhenAll([.. writers, .. readers, snapshots]);

        // The writers' models together are the expected state.
        foreach (string name in new[] { "app0.cpu", "app1.cpu", "app2.cpu" })
        {
            var expected = new Dictionary<string, ulong>();
            foreach (ReferenceModel m in models)
            {
                foreach (var (stack, value) in m.Query("acme", Selector(name), T0, T0 + 7200)) expected[stack] = expected.GetValueOrDefault(stack) + value;
            }
            AssertSame(expected, QueryStacks(storage, "acme", Selector(name), T0, T0 + 7200, out _), name);
            foreach (var (_, stacks) in observed.Where(o => o.Name == name))
            {
                foreach (var (stack, value) in stacks) Assert.True(expected.GetValueOrDefault(stack) >= value, $"{name} {stack}: a query saw {value}, the final state has {expected.GetValueOrDefault(stack)}");
            }
            storage.Dispose();
            storage = await OpenAsync(options);
            AssertSame(expected, QueryStacks(storage, "acme", Selector(name), T0, T0 + 7200, out _), name + " after restart");
        }
        storage.Dispose();
    }
}
