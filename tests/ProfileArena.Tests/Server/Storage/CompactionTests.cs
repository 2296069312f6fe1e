using ProfileArena.Tests.Support;
using System.Globalization;
using System.Text;
using ProfileArena.Server.Storage;
using static ProfileArena.Tests.Server.Storage.StorageTestKit;

namespace ProfileArena.Tests.Server.Storage;

/// <summary>
/// Shard compaction (native-notes.md, "Server storage"): a workload whose frame names change with every push
/// (JIT addresses, lambdas) under retention. Checked against <see cref="ReferenceModel"/> restricted to what
/// retention keeps, across automatic and forced compactions, crashes before and after a snapshot of compacted
/// trees, and against a fresh storage holding only the live data (native bytes).
/// </summary>
public class CompactionTests
{
    private const long T0 = 1_700_000_000; // aligned to 100 s: the retention cutoffs below are too
    private const long Retention = 600;    // both levels: 10 s and 100 s buckets are kept 600 s

    private static readonly SeriesKey[] SeriesKeys =
    [
        Key("acme", "shop.cpu", ("env", "prod")),
        Key("acme", "shop.cpu", ("env", "dev")),
        Key("acme", "shop.alloc_space", ("env", "prod")),
        Key("globex", "shop.cpu", ("env", "prod")),
    ];

    /// <summary>A profile as the test keeps it, to replay into a fresh storage.</summary>
    private sealed record Pushed(SeriesKey Series, long From, (string Stack, ulong Value)[] Stacks);

    /// <summary>Stacks over a few stable frames ending in names no earlier push used (a lambda class and a JIT
    /// address, 40–70 bytes each): every push interns new names.</summary>
    private static Pushed ChurningPush(Random random, SeriesKey series, long from, int push, int meanStacks = 6)
    {
        string[] stable = ["main", "runtime.goexit", "net/http.(*conn).serve", "encoding/json.Unmarshal", "GC"];
        int count = random.Next(meanStacks / 2, meanStacks * 3 / 2 + 1);
        var stacks = new (string, ulong)[count];
        for (int i = 0; i < count; i++)
        {
            var frames = Enumerable.Range(0, random.Next(1, 4)).Select(_ => stable[random.Next(stable.Length)]).ToList();
            frames.Add(string.Create(CultureInfo.InvariantCulture, $"com.example.shop.OrderService$$Lambda${push}/0x{random.NextInt64():x16}.apply"));
            if (random.Next(2) == 0) frames.Add(string.Create(CultureInfo.InvariantCulture, $"JIT compiled 0x{random.NextInt64():x16}"));
            stacks[i] = (string.Join(';', frames), (ulong)random.Next(1, 1000));
        }
        return new Pushed(series, from, stacks);
    }

    private static IngestProfile ToProfile(Pushed p) => Profile(p.Series, p.From, p.Stacks);

    private static StorageOptions CompactingOptions(string dir, string engine = "arena") => new()
    {
        DataDir = dir,
        ShardCount = 2,
        Levels = 2,
        LevelRetentionSeconds = [Retention, Retention],
        SnapshotIntervalSeconds = 0,
        Engine = engine,
        CompactionFactor = 2,
        CompactionMinBytes = 0,
    };

    /// <summary>One push per series at <paramref name="clock"/>'s now − 10 (a fresh 10 s profile), acknowledged, then in the model.</summary>
    private static async Task PushStep(ProfileStorage storage, ManualClock clock, Random random, ReferenceModel model, List<Pushed> pushed, int push)
    {
        clock.Now += 10;
        var batch = SeriesKeys.Select(s => ChurningPush(random, s, clock.Now - 10, push)).ToList();
        await storage.IngestAsync([.. batch.Select(ToProfile)], TestContext.Current.CancellationToken);
        foreach (Pushed p in batch)
        {
            model.Add(ToProfile(p));
            pushed.Add(p);
        }
    }

    /// <summary>Oldest data retention still keeps at <paramref name="now"/>: the 100 s bucket boundary (level 1 is the
    /// coarsest level; a 10 s bucket expired after it is still served from its 100 s bucket).</summary>
    private static long Cutoff(long now) => BucketMath.Floor(now - Retention, 1);

    /// <summary>Every query answer against the model restricted to [cutoff, ∞): ranges aligned to 100 s from before the
    /// cutoff to after now (exact through the 100 s buckets), and ranges aligned to 10 s inside level 0's retention.</summary>
    private static void CompareQueries(ProfileStorage storage, ReferenceModel model, Random random, long now, int queries, string context)
    {
        long cutoff = Cutoff(now), fineStart = BucketMath.Floor(now - Retention, 0);
        var ranges = new List<(long, long)> { (cutoff - 1000, now + 100), (T0, now + 100) };
        for (int q = 0; q < queries; q++)
        {
            if (q % 2 == 0)
            {
                long from = cutoff - 300 + 100 * random.Next(0, (int)((now - cutoff) / 100) + 5);
                ranges.Add((from, from + 100 * random.Next(1, 8)));
            }
            else
            {
                long from = fineStart + 10 * random.Next(0, (int)((now - fineStart) / 10) + 2);
                ranges.Add((from, from + 10 * random.Next(1, 30)));
            }
        }
        foreach (var (from, until) in ranges)
        {
            string tenant = random.Next(4) == 0 ? "globex" : "acme";
            SeriesSelector selector = random.Next(3) switch
            {
                0 => Selector("shop.cpu"),
                1 => Selector("shop.cpu", new LabelMatcher("env", MatchOp.Equal, "prod")),
                _ => Selector("shop.alloc_space"),
            };
            long kept = Math.Max(from, cutoff);
            Dictionary<string, ulong> expected = kept >= until ? [] : model.Query(tenant, selector, kept, until);
            var stored = QueryStacks(storage, tenant, selector, from, until, out QueryResult result);
            string where = $"{context}: {tenant} {selector.Name}{{{string.Join(",", selector.Matchers)}}} [{from}, {until}), cutoff {cutoff}";
            AssertSame(expected, stored, where);
            Assert.Equal(kept >= until ? 0 : model.Series(tenant, selector, kept, until).Count, result.Series);
        }
    }

    [Theory]
    [InlineData("arena")]
    [InlineData("baseline")]
    public async Task ChurningNamesUnderRetentionMatchTheReferenceAndCompactionDropsTheDeadNames(string engine)
    {
        using var dir = new TempDataDir();
        var clock = new ManualClock(T0);
        var random = new Random(20261129);
        var model = new ReferenceModel();
        var pushed = new List<Pushed>();
        StorageOptions options = CompactingOptions(dir.Path, engine);
        var storage = await OpenAsync(options, clock);
        try
        {
            for (int push = 1; push <= 300; push++)
            {
                await PushStep(storage, clock, random, model, pushed, push);
                if (push % 6 == 0) await storage.RemoveExpiredAsync(); // retention every simulated minute, then the compaction check
                if (push % 50 == 0) CompareQueries(storage, model, random, clock.Now, 30, $"{engine}, push {push}");
            }
            StorageStats auto = storage.Stats();
            if (engine == "baseline")
            {
                // Baseline's names are node fields, freed with their trees: nothing to compact, ever.
                Assert.Equal(0, auto.Compactions);
                await storage.CompactAsync();
                Assert.Equal(0, storage.Stats().Compactions);
                CompareQueries(storage, model, random, clock.Now, 30, "baseline, end");
                return;
            }
            // 300 pushes of new names against 60 pushes' worth kept: the trigger (names > 2 × live) fired several times.
            Assert.True(auto.Compactions >= 3, $"{auto.Compactions} automatic compactions");
            Assert.True(auto.CompactionReclaimedBytes > 0);

            long before = auto.NativeBytes;
            await storage.CompactAsync();
            StorageStats compacted = storage.Stats();
            Assert.Equal(auto.Trees, compacted.Trees);
            Assert.Equal(auto.Nodes, compacted.Nodes);
            CompareQueries(storage, model, random, clock.Now, 60, "after a forced compaction");

            // A fresh storage given only the profiles retention keeps holds the same trees and only their names.
            using var freshDir = new TempDataDir();
            var fresh = await OpenAsync(CompactingOptions(freshDir.Path), clock);
            try
            {
                long cutoff = Cutoff(clock.Now);
                foreach (Pushed p in pushed.Where(p => p.From >= cutoff)) await fresh.IngestAsync([ToProfile(p)], TestContext.Current.CancellationToken);
                StorageStats reference = fresh.Stats();
                Assert.Equal(reference.Trees, compacted.Trees);
                Assert.Equal(reference.Nodes, compacted.Nodes);
                string figures = $"native bytes: {before:N0} before the forced compaction, {compacted.NativeBytes:N0} after, {reference.NativeBytes:N0} in a fresh storage with the same trees";
                Console.Error.WriteLine(figures);
                // Stated factor: within 10 % of the fresh storage (both hold the same nodes and names; slab rounding differs).
                Assert.True(compacted.NativeBytes <= reference.NativeBytes * 11 / 10, figures);
                Assert.True(compacted.NativeBytes < before, figures);
            }
            finally
            {
                fresh.Dispose();
            }
        }
        finally
        {
            storage.Dispose();
        }
    }

    [Fact]
    public async Task CompactionsBeforeACrashAndAfterASnapshotOfCompactedTreesRecoverExactly()
    {
        using var dir = new TempDataDir();
        var clock = new ManualClock(T0);
        var random = new Random(7);
        var model = new ReferenceModel();
        var pushed = new List<Pushed>();
        StorageOptions options = CompactingOptions(dir.Path);
        int push = 0;

        var storage = await OpenAsync(options, clock);
        while (push < 40) await PushStep(storage, clock, random, model, pushed, ++push);
        await storage.SnapshotAsync(); // snapshot of the uncompacted trees (old ids)
        while (push < 150)
        {
            await PushStep(storage, clock, random, model, pushed, ++push);
            if (push % 6 == 0) await storage.RemoveExpiredAsync();
        }
        Assert.True(storage.Stats().Compactions > 0, "no compaction after the snapshot");
        await PushStep(storage, clock, random, model, pushed, ++push);
        await storage.RemoveExpiredAsync(); // as after the restart below: both sides at the same retention
        StorageStats beforeCrash = storage.Stats();
        storage.Dispose(); // crash: the snapshot has the old ids, the WAL after it names series and buckets only

        storage = await OpenAsync(options, clock);
        await storage.RemoveExpiredAsync(); // what the host does at start
        Assert.Equal(beforeCrash.Trees, storage.Stats().Trees);
        Assert.Equal(beforeCrash.Nodes, storage.Stats().Nodes);
        CompareQueries(storage, model, random, clock.Now, 40, "after a crash following compactions");

        await storage.CompactAsync();
        await storage.SnapshotAsync(); // snapshot of compacted trees (new ids)
        while (push < 170) await PushStep(storage, clock, random, model, pushed, ++push);
        await storage.RemoveExpiredAsync();
        await storage.CompactAsync(); // the ids change again after the snapshot
        await PushStep(storage, clock, random, model, pushed, ++push);
        await storage.RemoveExpiredAsync();
        beforeCrash = storage.Stats();
        storage.Dispose(); // crash

        storage = await OpenAsync(options, clock);
        await storage.RemoveExpiredAsync();
        Assert.Equal(beforeCrash.Trees, storage.Stats().Trees);
        Assert.Equal(beforeCrash.Nodes, storage.Stats().Nodes);
        CompareQueries(storage, model, random, clock.Now, 40, "after a crash following a snapshot of compacted trees");
        await storage.CompactAsync();
        await storage.StopAsync(); // clean stop: a snapshot of compacted trees, WAL retired
        storage.Dispose();

        storage = await OpenAsync(options, clock);
        CompareQueries(storage, model, random, clock.Now, 40, "after a clean stop");
        storage.Dispose();
    }

    [Fact]
    public async Task QueriesDuringCompactionsSeeWholeAnswers()
    {
        using var dir = new TempDataDir();
        var clock = new ManualClock(T0);
        var random = new Random(11);
        var model = new ReferenceModel();
        var pushed = new List<Pushed>();
        var storage = await OpenAsync(CompactingOptions(dir.Path), clock);
        try
        {
            for (int push = 1; push <= 40; push++) await PushStep(storage, clock, random, model, pushed, push);
            SeriesSelector all = Selector("shop.cpu");
            Dictionary<string, ulong> expected = model.Query("acme", all, T0, clock.Now + 100);
            using var stop = new CancellationTokenSource();
            // The compactions start once every reader has answered once (on 2 busy cores a pool thread could otherwise
            // start only after the 20 compactions, and its answers would race nothing).
            using var started = new CountdownEvent(3);
            // Readers query (merge under the removal lock, read stats lock-free) while the loop compacts again and again.
            var readers = Enumerable.Range(0, 2).Select(reader => Task.Run(() =>
            {
                int rounds = 0;
                while (!stop.IsCancellationRequested && rounds++ < 10_000)
                {
                    AssertSame(expected, QueryStacks(storage, "acme", all, T0, clock.Now + 100, out _), "query during compactions");
                    Assert.True(storage.Stats().NativeBytes > 0);
                    if (rounds == 1) started.Signal();
                }
                return rounds;
            })).ToList();
            // A flame graph's reader: its truncated sums read the newest pieces' stored trees in place (under the removal
            // lock) while compactions swap the backend under them; a race makes it collect again, never a wrong answer.
            long until = clock.Now;
            Dictionary<string, ulong> recent = model.Query("acme", all, T0, until);
            using var expectedStore = new TreeStore();
            ProfileTree expectedCut = expectedStore.CreateTree();
            foreach (var (stack, self) in recent) expectedCut.Insert(stack, self);
            expectedCut.Truncate(5);
            List<VisitedNode> expectedNodes = TreeSnapshot.Of(expectedCut);
            int truncated = 0;
            readers.Add(Task.Run(async () =>
            {
                int rounds = 0;
                while (!stop.IsCancellationRequested && rounds++ < 10_000)
                {
                    using var store = new TreeStore();
                    ProfileTree cut = store.CreateTree();
                    QueryResult result = await storage.QueryTruncatedAsync("acme", all, T0, until, cut, 5);
                    if (result.Truncated) truncated++;
                    else cut.Truncate(5);
                    Assert.True(expectedNodes.SequenceEqual(TreeSnapshot.Of(cut)), "truncated sum during compactions");
                    if (rounds == 1) started.Signal();
                }
                return rounds;
            }));
            Assert.True(started.Wait(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken), "the readers did not start within 60 s");
            for (int i = 0; i < 20; i++) await storage.CompactAsync();
            await stop.CancelAsync();
            int[] rounds = await Task.WhenAll(readers);
            Assert.True(truncated > 1, "no truncated sum ran");
            StorageStats stats = storage.Stats();
            Assert.Equal(20 * stats.Shards, stats.Compactions);
            Assert.All(rounds, r => Assert.True(r > 1, "a reader never ran"));
        }
        finally
        {
            storage.Dispose();
        }
    }

    [Fact]
    public async Task ACompactionThatDoesNotFitTheBudgetIsSkippedAndCounted()
    {
        using var dir = new TempDataDir();
        var clock = new ManualClock(T0);
        var random = new Random(13);
        var model = new ReferenceModel();
        var pushed = new List<Pushed>();
        StorageOptions options = CompactingOptions(dir.Path);
        var storage = await OpenAsync(options, clock);
        for (int push = 1; push <= 30; push++) await PushStep(storage, clock, random, model, pushed, push);
        long held = storage.Stats().NativeBytes;
        storage.Dispose();

        // Room for what the shards hold plus a little: a copy of the larger shard does not fit.
        options.MaxNativeBytes = held + held / 10;
        storage = await OpenAsync(options, clock);
        try
        {
            await storage.CompactAsync();
            StorageStats stats = storage.Stats();
            Assert.Equal(0, stats.Compactions);
            Assert.Equal(stats.Shards, stats.CompactionsSkipped);
            Assert.Equal(held, stats.NativeBytes);
            CompareQueries(storage, model, random, clock.Now, 20, "after skipped compactions");
        }
        finally
        {
            storage.Dispose();
        }
    }

    [Fact]
    public async Task MetricsCountCompactionsAndTheBytesTheyReclaimed()
    {
        using var dir = new TempDataDir();
        var clock = new ManualClock(T0);
        var random = new Random(19);
        var model = new ReferenceModel();
        var pushed = new List<Pushed>();
        var storage = await OpenAsync(CompactingOptions(dir.Path), clock);
        try
        {
            for (int push = 1; push <= 120; push++)
            {
                await PushStep(storage, clock, random, model, pushed, push);
                if (push % 6 == 0) await storage.RemoveExpiredAsync();
            }
            var metrics = new ProfileArena.Server.Operations.ServerMetrics(storage);
            using var text = new MemoryStream();
            await metrics.Registry.CollectAndExportAsTextAsync(text, TestContext.Current.CancellationToken);
            string[] lines = Encoding.UTF8.GetString(text.ToArray()).Split('\n');
            double Value(string series) => double.Parse(lines.Single(l => l.StartsWith(series + " ", StringComparison.Ordinal))[(series.Length + 1)..], CultureInfo.InvariantCulture);
            StorageStats stats = storage.Stats();
            Assert.True(stats.Compactions > 0);
            Assert.Equal(stats.Compactions, Value("profilearena_storage_compactions_total"));
            Assert.Equal(stats.CompactionReclaimedBytes, Value("profilearena_storage_compaction_reclaimed_bytes_total"));
            Assert.Equal(0, Value("profilearena_storage_compactions_skipped_total"));
        }
        finally
        {
            storage.Dispose();
        }
    }

    /// <summary>Soak-style (bounded: 700 simulated 10 s steps, a few seconds): the same churning workload with retention
    /// holding the trees flat. With compaction, native bytes stay in a band once retention holds; without it (factor
    /// 0) the names of removed trees pile up and the same band check fails — the leak the last soak found.</summary>
    [Fact]
    public async Task WithChurningNamesNativeBytesStayInABandOnlyWithCompaction()
    {
        var (on, onTable) = await SoakNativeBytes(compactionFactor: 2);
        var (off, offTable) = await SoakNativeBytes(compactionFactor: 0);
        Console.Error.WriteLine($"compaction on:\n{onTable}\ncompaction off:\n{offTable}");
        Assert.True(InBand(on, out string why), $"with compaction: {why}\n{onTable}");
        Assert.False(InBand(off, out _), $"without compaction the band check must fail (else it proves nothing)\n{offTable}");
        // The leak itself: without compaction the peak grows window after window.
        Assert.True(off[^1].Peak > off[0].Peak * 13 / 10, offTable);
    }

    private sealed record Window(int LastStep, long Low, long Peak, long Nodes);

    /// <summary>Every window's peak and low within 15 % of the first window's: retention plus compaction keep native
    /// bytes in a sawtooth (names grow to 2 × the live ones, a compaction drops them) whose extremes do not drift.</summary>
    private static bool InBand(List<Window> windows, out string why)
    {
        Window first = windows[0];
        foreach (Window w in windows)
        {
            if (w.Peak > first.Peak * 115 / 100 || w.Low < first.Low * 85 / 100 || w.Low > first.Low * 115 / 100)
            {
                why = $"window ending at step {w.LastStep} left the ±15 % band of the first";
                return false;
            }
        }
        why = "";
        return true;
    }

    private static async Task<(List<Window>, string)> SoakNativeBytes(double compactionFactor)
    {
        const int WarmupSteps = 100, WindowSteps = 100, Windows = 6;
        using var dir = new TempDataDir();
        var clock = new ManualClock(T0);
        var random = new Random(17);
        var options = new StorageOptions
        {
            DataDir = dir.Path,
            ShardCount = 2,
            Levels = 2,
            LevelRetentionSeconds = [60, 600],
            SnapshotIntervalSeconds = 0,
            CompactionFactor = compactionFactor,
            CompactionMinBytes = 0,
        };
        var storage = await OpenAsync(options, clock);
        var windows = new List<Window>();
        try
        {
            long low = long.MaxValue, peak = 0;
            for (int step = 1; step <= WarmupSteps + WindowSteps * Windows; step++)
            {
                clock.Now += 10;
                var batch = SeriesKeys.Take(2).Select(s => ToProfile(ChurningPush(random, s, clock.Now - 10, step, meanStacks: 40))).ToList();
                await storage.IngestAsync(batch, TestContext.Current.CancellationToken);
                await storage.RemoveExpiredAsync();
                if (step <= WarmupSteps) continue;
                StorageStats stats = storage.Stats();
                low = Math.Min(low, stats.NativeBytes);
                peak = Math.Max(peak, stats.NativeBytes);
                if ((step - WarmupSteps) % WindowSteps == 0)
                {
                    windows.Add(new Window(step, low, peak, stats.Nodes));
                    (low, peak) = (long.MaxValue, 0);
                }
            }
            if (compactionFactor > 0) Assert.True(storage.Stats().Compactions > 0);
            else Assert.Equal(0, storage.Stats().Compactions);
        }
        finally
        {
            storage.Dispose();
        }
        var table = new StringBuilder();
        foreach (Window w in windows) table.Append(CultureInfo.InvariantCulture, $"steps to {w.LastStep}: native bytes {w.Low:N0} … {w.Peak:N0}, {w.Nodes:N0} nodes\n");
        return (windows, table.ToString());
    }
}
