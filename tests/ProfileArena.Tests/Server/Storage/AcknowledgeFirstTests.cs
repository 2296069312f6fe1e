using ProfileArena.Server.Storage;
using static ProfileArena.Tests.Server.Storage.StorageTestKit;

namespace ProfileArena.Tests.Server.Storage;

/// <summary>
/// A shard acknowledges a write once its WAL group is durable and applies it to memory after (native-notes.md, "Server
/// storage", the write loop). These tests hold the apply stage with the test hook (<c>StorageOptions.BeforeApplyForTests</c>)
/// and check what must hold meanwhile: the acknowledgement does not wait for the apply; a query waits for every write
/// acknowledged before it; a snapshot or a stop covers only applied records and loses none; the backlog bound holds
/// acknowledgements back; an apply that fails after the acknowledgement makes the shard refuse writes, and a restart
/// replays the acknowledged write from the WAL.
/// </summary>
public sealed class AcknowledgeFirstTests
{
    private const long T0 = 1_700_000_000;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60); // a hang fails the test instead of blocking it

    /// <summary>Holds every shard's apply stage while closed; the shard's name of each group that passed is recorded.</summary>
    private sealed class ApplyGate : IDisposable
    {
        private readonly ManualResetEventSlim _open = new(true);

        public int Passed;

        public void Close() => _open.Reset();

        public void Open() => _open.Set();

        public void Hook(string shard)
        {
            if (!_open.Wait(Bound)) throw new TimeoutException("the test never opened the apply gate");
            Interlocked.Increment(ref Passed);
        }

        public void Dispose()
        {
            _open.Set();
            _open.Dispose();
        }
    }

    /// <summary>Polls (bounded) until <paramref name="done"/> holds: for states another thread reaches.</summary>
    private static async Task Until(Func<bool> done, string what)
    {
        for (int i = 0; i < 6000 && !done(); i++) await Task.Delay(10, TestContext.Current.CancellationToken);
        Assert.True(done(), $"timed out waiting until {what}");
    }

    [Fact]
    public async Task AWriteIsAcknowledgedBeforeItIsAppliedAndAQueryWaitsUntilItIs()
    {
        using var dir = new TempDataDir();
        using var gate = new ApplyGate();
        StorageOptions options = Options(dir.Path, shards: 1);
        options.BeforeApplyForTests = gate.Hook;
        var storage = await OpenAsync(options);
        SeriesKey key = Key("acme", "app.cpu");
        var model = new ReferenceModel();
        try
        {
            gate.Close();
            IngestProfile p = Profile(key, T0, ("main;work", 7), ("main;idle", 3));
            model.Add(p);
            // Acknowledged while the apply stage is held: the acknowledgement waits for the fsync only.
            await storage.IngestAsync([p], TestContext.Current.CancellationToken).AsTask().WaitAsync(Bound, TestContext.Current.CancellationToken);
            p.Stacks.Dispose(); // the caller's batch goes back to the pool: the shard applies its own copy
            Assert.Equal(0, gate.Passed);

            Task<Dictionary<string, ulong>> query = Task.Run(() => QueryStacks(storage, "acme", Selector("app.cpu"), T0, T0 + 10, out _), TestContext.Current.CancellationToken);
            Task<IReadOnlyList<SeriesKey>> series = Task.Run(() => storage.Series("acme", null, T0, T0 + 10), TestContext.Current.CancellationToken);
            // Both wait for the held apply (or, without the wait, come back at once without the write).
            await Until(() => storage.ApplyStages.Waiters == 2 || query.IsCompleted || series.IsCompleted, "the query and the series lookup wait for the apply stage");
            gate.Open();
            AssertSame(model.Query("acme", Selector("app.cpu"), T0, T0 + 10), await query.WaitAsync(Bound, TestContext.Current.CancellationToken), "query started before the apply");
            Assert.Equal([key], await series.WaitAsync(Bound, TestContext.Current.CancellationToken));
            Assert.Equal(1, gate.Passed);
        }
        finally
        {
            gate.Open();
            storage.Dispose();
        }
    }

    /// <summary>A query waits only behind unapplied writes to series it reads (native-notes.md, "Server storage", read
    /// path): with one shard's apply stage held on a write to <c>b.cpu{pod=1}</c>, queries of <c>a.cpu</c> and of
    /// <c>b.cpu{pod="2"}</c> answer at once with every acknowledged write of theirs, while a query of <c>b.cpu</c>, a query of
    /// <c>b.cpu{pod=~".*"}</c> and a series lookup of every series wait, then see the held write.</summary>
    [Fact]
    public async Task AQueryWaitsOnlyForUnappliedWritesToTheSeriesItReads()
    {
        using var dir = new TempDataDir();
        using var gate = new ApplyGate();
        StorageOptions options = Options(dir.Path, shards: 1);
        options.BeforeApplyForTests = gate.Hook;
        var storage = await OpenAsync(options);
        SeriesKey a = Key("acme", "a.cpu", ("pod", "1")), b1 = Key("acme", "b.cpu", ("pod", "1")), b2 = Key("acme", "b.cpu", ("pod", "2"));
        var model = new ReferenceModel();
        var random = new Random(11);
        CancellationToken ct = TestContext.Current.CancellationToken;
        try
        {
            // Applied: one write to each series.
            foreach (SeriesKey key in new[] { a, b1, b2 })
            {
                IngestProfile p = RandomProfile(random, key, T0);
                model.Add(p);
                await storage.IngestAsync([p], ct).AsTask().WaitAsync(Bound, ct);
            }
            await Until(() => gate.Passed == 3, "the first writes are applied");
            // Acknowledged but held: a second write to a (applied first) and one to b.cpu{pod=1} behind it.
            IngestProfile a2 = RandomProfile(random, a, T0 + 10);
            model.Add(a2);
            await storage.IngestAsync([a2], ct).AsTask().WaitAsync(Bound, ct);
            await Until(() => gate.Passed == 4, "the second write to a is applied");
            gate.Close();
            IngestProfile held = RandomProfile(random, b1, T0 + 10);
            model.Add(held);
            await storage.IngestAsync([held], ct).AsTask().WaitAsync(Bound, ct);

            // Not behind the held write: answered while the gate is closed, with everything acknowledged to them.
            SeriesSelector onlyPod2 = Selector("b.cpu", new LabelMatcher("pod", MatchOp.Equal, "2"));
            foreach (SeriesSelector selector in new[] { Selector("a.cpu"), onlyPod2 })
            {
                Task<Dictionary<string, ulong>> q = Task.Run(() => QueryStacks(storage, "acme", selector, T0, T0 + 20, out _), ct);
                AssertSame(model.Query("acme", selector, T0, T0 + 20), await q.WaitAsync(Bound, ct), $"{selector.Name} ({selector.Matchers.Count} matchers) with b.cpu{{pod=1}} held");
            }
            Assert.Equal(4, gate.Passed);
            Assert.Equal([b2], storage.Series("acme", onlyPod2, T0, T0 + 20));

            // Behind it: the written series by name, by a regular expression, and a lookup of every series.
            SeriesSelector anyPod = Selector("b.cpu", new LabelMatcher("pod", MatchOp.Regex, ".*"));
            Task<Dictionary<string, ulong>> byName = Task.Run(() => QueryStacks(storage, "acme", Selector("b.cpu"), T0, T0 + 20, out _), ct);
            Task<Dictionary<string, ulong>> byRegex = Task.Run(() => QueryStacks(storage, "acme", anyPod, T0, T0 + 20, out _), ct);
            Task<IReadOnlyList<SeriesKey>> all = Task.Run(() => storage.Series("acme", null, T0 + 10, T0 + 20), ct);
            await Until(() => storage.ApplyStages.Waiters == 3 || byName.IsCompleted || byRegex.IsCompleted || all.IsCompleted, "the three reads of b.cpu{pod=1} wait for the apply stage");
            Assert.False(byName.IsCompleted || byRegex.IsCompleted || all.IsCompleted, "a read of the held series answered before its write was applied");
            gate.Open();
            AssertSame(model.Query("acme", Selector("b.cpu"), T0, T0 + 20), await byName.WaitAsync(Bound, ct), "b.cpu after the apply");
            AssertSame(model.Query("acme", anyPod, T0, T0 + 20), await byRegex.WaitAsync(Bound, ct), "b.cpu{pod=~\".*\"} after the apply");
            Assert.Equal([a, b1], await all.WaitAsync(Bound, ct));
        }
        finally
        {
            gate.Open();
            storage.Dispose();
        }
    }

    [Fact]
    public async Task SnapshotAndStopWaitForTheApplyStageAndLoseNothingAcknowledged()
    {
        using var dir = new TempDataDir();
        using var gate = new ApplyGate();
        StorageOptions options = Options(dir.Path, shards: 2);
        options.BeforeApplyForTests = gate.Hook;
        var random = new Random(5);
        var model = new ReferenceModel();
        string[] names = ["a.cpu", "b.cpu", "c.cpu", "d.cpu"];
        var storage = await OpenAsync(options);
        try
        {
            // Round 1: acknowledged with the apply held, then a snapshot. A snapshot taken before the apply would
            // save trees without these writes and retire the WAL that holds them.
            gate.Close();
            await IngestRound(storage, names, random, model, T0);
            Task snapshot = storage.SnapshotAsync();
            await Until(() => storage.ApplyStages.Waiters >= 1 || snapshot.IsCompleted, "the snapshot waits for the apply stage");
            gate.Open();
            await snapshot.WaitAsync(Bound, TestContext.Current.CancellationToken);

            // Round 2: acknowledged with the apply held, then a stop (with its snapshot).
            gate.Close();
            await IngestRound(storage, names, random, model, T0 + 10);
            Task stop = storage.StopAsync(snapshot: true);
            await Until(() => storage.ApplyStages.Waiters >= 1 || stop.IsCompleted, "the stop waits for the apply stage");
            gate.Open();
            await stop.WaitAsync(Bound, TestContext.Current.CancellationToken);
        }
        finally
        {
            gate.Open();
            storage.Dispose();
        }
        options.BeforeApplyForTests = null;
        storage = await OpenAsync(options);
        try
        {
            foreach (string name in names)
                AssertSame(model.Query("acme", Selector(name), T0, T0 + 100), QueryStacks(storage, "acme", Selector(name), T0, T0 + 100, out _), name + " after restart");
        }
        finally
        {
            storage.Dispose();
        }
    }

    private static async Task IngestRound(ProfileStorage storage, string[] names, Random random, ReferenceModel model, long from)
    {
        foreach (string name in names)
        {
            IngestProfile p = RandomProfile(random, Key("acme", name), from);
            model.Add(p);
            await storage.IngestAsync([p], TestContext.Current.CancellationToken).AsTask().WaitAsync(Bound, TestContext.Current.CancellationToken);
            p.Stacks.Dispose();
        }
        // And one call spanning both shards (prepare, commit), also acknowledged before it is applied.
        List<IngestProfile> spanning = [.. names.Select(n => RandomProfile(random, Key("acme", n), from + 5))];
        foreach (IngestProfile p in spanning) model.Add(p);
        await storage.IngestAsync(spanning, TestContext.Current.CancellationToken).AsTask().WaitAsync(Bound, TestContext.Current.CancellationToken);
        foreach (IngestProfile p in spanning) p.Stacks.Dispose();
    }

    /// <summary>Admission keeps every bucket total ≤ 2^64 − 1 counting what the trees hold and what is admitted but not
    /// applied: an acknowledged write still waiting for its apply counts, and a committed part counts once.</summary>
    [Fact]
    public async Task BucketTotalsCountAcknowledgedUnappliedWritesAndCommittedPartsOnce()
    {
        using var dir = new TempDataDir();
        using var gate = new ApplyGate();
        StorageOptions options = Options(dir.Path, shards: 8);
        options.BeforeApplyForTests = gate.Hook;
        SeriesKey a = Key("acme", "one.cpu");
        SeriesKey b = Enumerable.Range(0, 100).Select(i => Key("acme", $"other{i}.cpu")).First(k => ProfileStorage.ShardNumber(k, 8) != ProfileStorage.ShardNumber(a, 8));
        SeriesKey c = Key("acme", "near.cpu");
        var model = new ReferenceModel();
        var storage = await OpenAsync(options);
        try
        {
            // A call spanning shards puts 10 into a's buckets; counted once, they then take 2^64 − 11 more (total 2^64 − 2).
            List<IngestProfile> spanning = [Profile(a, T0, ("main;x", 10)), Profile(b, T0, ("main;y", 1))];
            IngestProfile fill = Profile(a, T0, ("main;x", ulong.MaxValue - 11));
            foreach (IngestProfile p in spanning.Append(fill)) model.Add(p);
            await storage.IngestAsync(spanning, TestContext.Current.CancellationToken);
            await storage.IngestAsync([fill], TestContext.Current.CancellationToken);

            // Held apply: the acknowledged write is not in the trees yet, and still counts.
            gate.Close();
            IngestProfile near = Profile(c, T0, ("main", ulong.MaxValue - 10));
            model.Add(near);
            await storage.IngestAsync([near], TestContext.Current.CancellationToken).AsTask().WaitAsync(Bound, TestContext.Current.CancellationToken);
            await Assert.ThrowsAsync<OverflowException>(() => storage.IngestAsync([Profile(c, T0 + 5, ("main", 100))], TestContext.Current.CancellationToken).AsTask());
            gate.Open();
            foreach (SeriesKey k in new[] { a, b, c })
                AssertSame(model.Query("acme", Selector(k.Name), T0, T0 + 10), QueryStacks(storage, "acme", Selector(k.Name), T0, T0 + 10, out _), k.Name);
        }
        finally
        {
            gate.Open();
            storage.Dispose();
        }
        options.BeforeApplyForTests = null;
        storage = await OpenAsync(options);
        try
        {
            foreach (SeriesKey k in new[] { a, b, c })
                AssertSame(model.Query("acme", Selector(k.Name), T0, T0 + 10), QueryStacks(storage, "acme", Selector(k.Name), T0, T0 + 10, out _), k.Name + " after restart");
        }
        finally
        {
            storage.Dispose();
        }
    }

    [Fact]
    public async Task AtTheBacklogBoundAcknowledgementsWaitForTheApplyStage()
    {
        using var dir = new TempDataDir();
        using var gate = new ApplyGate();
        StorageOptions options = Options(dir.Path, shards: 1);
        options.MaxUnappliedBytes = 64 << 10;
        options.BeforeApplyForTests = gate.Hook;
        var storage = await OpenAsync(options);
        var model = new ReferenceModel();
        SeriesKey key = Key("acme", "big.cpu");
        try
        {
            gate.Close();
            // 2,000 stacks of ~60 bytes: one write's WAL payload alone passes the 64 KiB bound.
            var stacks = Enumerable.Range(0, 2000).Select(i => ($"main;handler;process;step{i % 37};leaf-function-number-{i}", (ulong)(i + 1))).ToArray();
            IngestProfile first = Profile(key, T0, stacks);
            model.Add(first);
            await storage.IngestAsync([first], TestContext.Current.CancellationToken).AsTask().WaitAsync(Bound, TestContext.Current.CancellationToken);
            await Until(() => storage.ApplyStages.BacklogWaits >= 1, "the writer is held back by the backlog");

            IngestProfile second = Profile(key, T0 + 10, ("main;second", 5));
            model.Add(second);
            Task ingest = storage.IngestAsync([second], TestContext.Current.CancellationToken).AsTask();
            await Task.Yield();
            // Held back: not written, not acknowledged, while the first write waits for its apply.
            Assert.False(ingest.IsCompleted);
            Assert.Equal(1, storage.WalWrites.Records);
            gate.Open();
            await ingest.WaitAsync(Bound, TestContext.Current.CancellationToken);
            Assert.Equal(2, storage.WalWrites.Records);
            AssertSame(model.Query("acme", Selector("big.cpu"), T0, T0 + 20), QueryStacks(storage, "acme", Selector("big.cpu"), T0, T0 + 20, out _), "both writes");
        }
        finally
        {
            gate.Open();
            storage.Dispose();
        }
    }

    [Fact]
    public async Task AnApplyFailureAfterTheAcknowledgementRefusesWritesAndARestartReplaysTheWrite()
    {
        using var dir = new TempDataDir();
        StorageOptions options = Options(dir.Path, shards: 1);
        int fail = 1;
        options.BeforeApplyForTests = _ =>
        {
            if (Interlocked.Exchange(ref fail, 0) == 1) throw new InvalidOperationException("test: apply fails after the acknowledgement");
        };
        SeriesKey key = Key("acme", "app.cpu");
        var model = new ReferenceModel();
        var storage = await OpenAsync(options);
        try
        {
            IngestProfile p = Profile(key, T0, ("main;acknowledged", 11));
            model.Add(p);
            await storage.IngestAsync([p], TestContext.Current.CancellationToken); // durable, so acknowledged; its apply fails
            // The query waits for the failed apply and answers with what memory holds (the write is not in it).
            Assert.Empty(QueryStacks(storage, "acme", Selector("app.cpu"), T0, T0 + 10, out _));
            var refused = await Assert.ThrowsAsync<StorageUnavailableException>(() => storage.IngestAsync([Profile(key, T0 + 10, ("main;refused", 1))], TestContext.Current.CancellationToken).AsTask());
            Assert.Contains("could not apply a durable WAL record", refused.Message, StringComparison.Ordinal);
            // A stop must not snapshot memory that lacks an acknowledged write (the snapshot would retire its WAL).
            await storage.StopAsync(snapshot: true);
        }
        finally
        {
            storage.Dispose();
        }
        storage = await OpenAsync(options); // the hook fails no more
        try
        {
            AssertSame(model.Query("acme", Selector("app.cpu"), T0, T0 + 20), QueryStacks(storage, "acme", Selector("app.cpu"), T0, T0 + 20, out _), "after restart");
            IngestProfile after = Profile(key, T0 + 20, ("main;after", 2));
            model.Add(after);
            await storage.IngestAsync([after], TestContext.Current.CancellationToken);
            AssertSame(model.Query("acme", Selector("app.cpu"), T0, T0 + 30), QueryStacks(storage, "acme", Selector("app.cpu"), T0, T0 + 30, out _), "writes taken again");
        }
        finally
        {
            storage.Dispose();
        }
    }
}
