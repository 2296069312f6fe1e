using ProfileArena.Server.Storage;
using static ProfileArena.Tests.Server.Storage.StorageTestKit;

namespace ProfileArena.Tests.Server.Storage;

/// <summary>
/// The ingest endpoint returns its batches' arrays to the pool as soon as <see cref="IProfileStorage.IngestAsync"/>
/// completes, and the next request rents the same arrays: what storage stored (in memory, in snapshots, in the
/// WAL it replays) must not change when they are overwritten — for single-shard calls and calls spanning shards
/// (prepare, then commit). (A prepared part left behind by a failed commit is a shard's own copy by construction;
/// its effect is not observable here, as restart drops uncommitted parts.)
/// </summary>
public sealed class PooledBatchOwnershipTests
{
    private const long T0 = 1_700_000_000;

    [Fact]
    public async Task BatchesReturnedAndReusedAfterEachCallDoNotChangeWhatIsStored()
    {
        using var dir = new TempDataDir();
        StorageOptions options = Options(dir.Path, shards: 8);
        var random = new Random(12);
        var model = new ReferenceModel();
        var storage = await OpenAsync(options);
        string[] names = [.. Enumerable.Range(0, 8).Select(i => $"svc{i}.cpu")];
        for (int call = 0; call < 40; call++)
        {
            // 1–4 distinct series per call: most calls span shards (prepare, then commit).
            List<IngestProfile> profiles = [.. names.OrderBy(_ => random.Next()).Take(random.Next(1, 5))
                .Select(name => RandomProfile(random, Key("acme", name), T0 + 10 * random.Next(30)))];
            foreach (IngestProfile p in profiles) model.Add(p);
            await storage.IngestAsync(profiles, TestContext.Current.CancellationToken);
            foreach (IngestProfile p in profiles) p.Stacks.Dispose();
            // The next callers rent those arrays and fill them with other stacks (never stored).
            var scribbles = Enumerable.Range(0, 4).Select(_ => RandomProfile(random, Key("acme", "scribble.cpu"), T0).Stacks).ToList();
            if (call % 10 == 9) await storage.SnapshotAsync();
            foreach (StackBatch s in scribbles) s.Dispose();
        }
        foreach (string name in names)
            AssertSame(model.Query("acme", Selector(name), T0, T0 + 400), QueryStacks(storage, "acme", Selector(name), T0, T0 + 400, out _), name);
        storage.Dispose();

        storage = await OpenAsync(options); // snapshots plus WAL replay
        foreach (string name in names)
            AssertSame(model.Query("acme", Selector(name), T0, T0 + 400), QueryStacks(storage, "acme", Selector(name), T0, T0 + 400, out _), name + " after restart");
        storage.Dispose();
    }
}
