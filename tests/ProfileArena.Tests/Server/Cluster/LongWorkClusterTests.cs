using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using ProfileArena.Server.Cluster;
using ProfileArena.Server.Storage;
using ProfileArena.Tests.Server.Storage;

namespace ProfileArena.Tests.Server.Cluster;

/// <summary>
/// Long work in shard grains with a short Orleans call timeout (Cluster:CallTimeoutSeconds = 2 → ResponseTimeout
/// 2 s): a shard's query part that takes 2.5× the timeout is collected over many short calls and gives the single
/// node's exact answer; a part past Cluster:QueryTimeoutSeconds answers 503 naming its shard and is cancelled; a
/// query whose caller goes away cancels every shard's part; unclaimed parts expire and are released; a shard whose
/// load outlasts the call timeout does not fail activation — writes meanwhile answer "loading, retry", a query
/// waits for it, and the data arrive exact. The slowness comes from a test hook (<see cref="SlowShards"/>) that
/// also reports the cancellation of the work it delays. Every wait is bounded; nothing asserts a duration.
/// </summary>
public sealed class LongWorkClusterTests
{
    private const long T0 = 1_795_950_000;
    private const int CallTimeoutSeconds = 2;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    /// <summary>Random profiles of acme (a few series per shard), plus one of 3,000 distinct stacks whose partial
    /// tree passes the 64 KiB message piece.</summary>
    private static List<IngestProfile[]> Calls(int seed)
    {
        var random = new Random(seed);
        string[] names = ["api.cpu", "db.cpu"];
        var calls = new List<IngestProfile[]>();
        for (int c = 0; c < 24; c++)
        {
            SeriesKey key = StorageTestKit.Key("acme", names[random.Next(names.Length)], ("env", random.Next(2) == 0 ? "prod" : "dev"), ("pod", $"p{random.Next(6)}"));
            calls.Add([StorageTestKit.RandomProfile(random, key, T0 + random.Next(0, 3600))]);
        }
        var big = new StackBatch();
        for (int i = 0; i < 3000; i++) big.Add(Encoding.UTF8.GetBytes($"main;handler{i % 50};leaf-function-number-{i}"), (ulong)(i + 1));
        calls.Add([new IngestProfile(StorageTestKit.Key("acme", "api.cpu", ("env", "prod"), ("pod", "big")), T0 + 1234, T0 + 1244, SeriesMetadata.Default, big)]);
        return calls;
    }

    private static async Task IngestAll(IProfileStorage storage, IEnumerable<IngestProfile[]> calls)
    {
        foreach (IngestProfile[] call in calls) await storage.IngestAsync(call, TestContext.Current.CancellationToken);
    }

    private static void Dispose(IEnumerable<IngestProfile[]> calls)
    {
        foreach (IngestProfile p in calls.SelectMany(c => c)) p.Stacks.Dispose();
    }

    private static Task<ShardCluster> StartCluster(SlowShards hooks, int queryTimeoutSeconds = 120, int queryResultSeconds = 60, int loadWaitSeconds = 10, long maxPendingBytes = 1L << 30) =>
        ShardCluster.Start(configure: o =>
        {
            o.MaxPendingResultBytes = maxPendingBytes;
            o.CallTimeoutSeconds = CallTimeoutSeconds;
            o.QueryTimeoutSeconds = queryTimeoutSeconds;
            o.QueryResultSeconds = queryResultSeconds;
            o.LoadWaitSeconds = loadWaitSeconds;
        }, services: s => s.AddSingleton<ShardGrainHooks>(hooks));

    private static async Task<ShardCluster> StartWithData(SlowShards hooks, List<IngestProfile[]> calls, int queryTimeoutSeconds = 120, int queryResultSeconds = 60, int loadWaitSeconds = 10, long maxPendingBytes = 1L << 30)
    {
        ShardCluster cluster = await StartCluster(hooks, queryTimeoutSeconds, queryResultSeconds, loadWaitSeconds, maxPendingBytes);
        try
        {
            for (int i = 0; i < calls.Count; i++) await cluster.Storage(i % 3).IngestAsync(calls[i], TestContext.Current.CancellationToken);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    private static async Task<List<string>> Answers(IProfileStorage storage) =>
    [
        await QueryBytes.Render(storage, "acme", StorageTestKit.Selector("api.cpu"), T0, T0 + 3640),
        await QueryBytes.Render(storage, "acme", StorageTestKit.Selector("db.cpu", new LabelMatcher("env", MatchOp.Equal, "prod")), T0 + 600, T0 + 3000),
    ];

    private static async Task<List<string>> SingleNodeAnswers(IEnumerable<IngestProfile[]> calls)
    {
        using var dir = new TempDataDir();
        using ProfileStorage single = await StorageTestKit.OpenAsync(StorageTestKit.Options(dir.Path, shards: 4));
        await IngestAll(single, calls);
        List<string> answers = await Answers(single);
        Assert.Contains(answers, a => a.Contains("leaf-function-number-2999", StringComparison.Ordinal)); // the big partial is queried
        return answers;
    }

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 1200 && clock.Elapsed < Bound; i++)
        {
            if (condition()) return;
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        Assert.Fail($"timed out waiting for {what}");
    }

    private static void AssertNothingHeld(ShardCluster cluster)
    {
        foreach (var silo in cluster.Silos)
        {
            Assert.Equal(0, ShardCluster.Tickets(silo).Count);
            Assert.Equal(0, ShardCluster.Tickets(silo).PendingBytes);
        }
    }

    [Fact]
    public async Task AQueryLongerThanTheCallTimeoutIsCollectedAndExact()
    {
        List<IngestProfile[]> calls = Calls(seed: 3);
        try
        {
            List<string> expected = await SingleNodeAnswers(calls);
            var hooks = new SlowShards { QueryDelay = TimeSpan.FromSeconds(CallTimeoutSeconds * 2.5) };
            await using ShardCluster cluster = await StartWithData(hooks, calls);
            List<string> actual = await Answers(cluster.Storage(1));
            Assert.Equal(expected, actual);
            // Every shard's part did wait past the call timeout (the hook ran to its end, uncancelled) …
            Assert.True(hooks.QueriesDelayed >= 8, $"{hooks.QueriesDelayed} query parts were delayed, 2 queries × 4 shards expected");
            Assert.Empty(hooks.QueriesCancelled);
            // … and everything they held was released once taken.
            AssertNothingHeld(cluster);
        }
        finally
        {
            Dispose(calls);
        }
    }

    [Fact]
    public async Task AShardPastTheQueryDeadlineAnswers503NamingItAndItsWorkIsCancelled()
    {
        List<IngestProfile[]> calls = Calls(seed: 4);
        try
        {
            string slow = ShardGrainKey.For("acme", 2);
            var hooks = new SlowShards { QueryDelay = Bound, SlowKey = slow };
            await using ShardCluster cluster = await StartWithData(hooks, calls, queryTimeoutSeconds: 3 * CallTimeoutSeconds);
            using var store = new TreeStore();
            var e = await Assert.ThrowsAsync<StorageUnavailableException>(async () =>
                await cluster.Storage(0).QueryAsync("acme", StorageTestKit.Selector("api.cpu"), T0, T0 + 3640, store.CreateTree(), cancellationToken: TestContext.Current.CancellationToken));
            Assert.Contains($"shard {slow} did not answer the query within Cluster:QueryTimeoutSeconds", e.Message, StringComparison.Ordinal);
            // The slow part is cancelled (the hook sees its token fire) and released.
            await hooks.Cancelled(slow).WaitAsync(Bound, TestContext.Current.CancellationToken);
            await WaitUntil(() => cluster.Silos.All(s => ShardCluster.Tickets(s).Count == 0), "the cancelled part to be released");
            AssertNothingHeld(cluster);
        }
        finally
        {
            Dispose(calls);
        }
    }

    [Fact]
    public async Task AQueryWhoseCallerGoesAwayCancelsEveryShardsWork()
    {
        List<IngestProfile[]> calls = Calls(seed: 5);
        try
        {
            var hooks = new SlowShards { QueryDelay = Bound };
            await using ShardCluster cluster = await StartWithData(hooks, calls);
            using var aborted = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
            using var store = new TreeStore();
            Task<QueryResult> query = cluster.Storage(2).QueryAsync("acme", StorageTestKit.Selector("api.cpu"), T0, T0 + 3640, store.CreateTree(), cancellationToken: aborted.Token).AsTask();
            await WaitUntil(() => hooks.QueriesStarted == 4, "all 4 shards to start their part");
            aborted.Cancel(); // the HTTP request's RequestAborted
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => query);
            for (int n = 0; n < 4; n++) await hooks.Cancelled(ShardGrainKey.For("acme", n)).WaitAsync(Bound, TestContext.Current.CancellationToken);
            await WaitUntil(() => cluster.Silos.All(s => ShardCluster.Tickets(s).Count == 0), "the cancelled parts to be released");
            AssertNothingHeld(cluster);
        }
        finally
        {
            Dispose(calls);
        }
    }

    [Fact]
    public async Task AnUnclaimedPartExpiresAndIsReleased()
    {
        List<IngestProfile[]> calls = Calls(seed: 6);
        try
        {
            var hooks = new SlowShards();
            await using ShardCluster cluster = await StartWithData(hooks, calls, queryResultSeconds: CallTimeoutSeconds + 1);
            SeriesKey big = calls[^1][0].Series;
            string key = ShardGrainKey.For("acme", ProfileStorage.ShardNumber(big, 4));
            IShardGrain grain = cluster.Grain(key);
            var query = new ShardQuery("api.cpu", [], T0, T0 + 3640, 0, T0 + 3640, 5_000_000, 1L << 30);
            Guid ticket = await grain.StartQuery(query);
            // Finished and held for collection (the big partial tree's bytes are counted) …
            await WaitUntil(() => cluster.Silos.Sum(s => ShardCluster.Tickets(s).PendingBytes) > 64 << 10, "the part to finish");
            // … then, never taken, dropped with its bytes.
            await WaitUntil(() => cluster.Silos.All(s => ShardCluster.Tickets(s).Count == 0), "the unclaimed part to expire");
            AssertNothingHeld(cluster);
            ShardQueryReply? late = await grain.TakeQuery(ticket);
            Assert.NotNull(late);
            Assert.Equal(ShardOutcomeKind.Unavailable, late.Outcome.Kind);
            Assert.Contains("Cluster:QueryResultSeconds", late.Outcome.Message, StringComparison.Ordinal);
            // A part taken in time is still whole.
            Guid again = await grain.StartQuery(query);
            ShardQueryReply? reply = null;
            for (int i = 0; i < 200 && reply is null; i++) reply = await grain.TakeQuery(again);
            Assert.NotNull(reply);
            Assert.Equal(ShardOutcomeKind.Ok, reply.Outcome.Kind);
            Assert.True(reply.TreeLength > reply.Tree.Length, "the big partial tree travels in pieces");
            Assert.NotEqual(Guid.Empty, reply.More);
            long read = reply.Tree.Length;
            while (read < reply.TreeLength) read += (await grain.ReadChunk(reply.More, read)).Length;
            Assert.Equal(reply.TreeLength, read);
            AssertNothingHeld(cluster);
        }
        finally
        {
            Dispose(calls);
        }
    }

    [Fact]
    public async Task APartPastTheSilosPendingBytesIsRefusedWith503AndReleased()
    {
        List<IngestProfile[]> calls = Calls(seed: 8);
        try
        {
            // 64 KiB of parts held per silo: the big profile's partial tree (over 64 KiB) cannot be held.
            await using ShardCluster cluster = await StartWithData(new SlowShards(), calls, maxPendingBytes: 64 << 10);
            string bigKey = ShardGrainKey.For("acme", ProfileStorage.ShardNumber(calls[^1][0].Series, 4));
            using var store = new TreeStore();
            var e = await Assert.ThrowsAsync<StorageUnavailableException>(async () =>
                await cluster.Storage(0).QueryAsync("acme", StorageTestKit.Selector("api.cpu"), T0, T0 + 3640, store.CreateTree(), cancellationToken: TestContext.Current.CancellationToken));
            Assert.Contains("Cluster:MaxPendingResultBytes (65536)", e.Message, StringComparison.Ordinal);
            Assert.Contains($"shard {bigKey}", e.Message, StringComparison.Ordinal);
            await WaitUntil(() => cluster.Silos.All(s => ShardCluster.Tickets(s).Count == 0), "the refused query's parts to be released");
            AssertNothingHeld(cluster);
            // Smaller parts fit: the same data, another name, answers as the single node does.
            List<string> expected = await SingleNodeAnswers(calls);
            Assert.Equal(expected[1], await QueryBytes.Render(cluster.Storage(1), "acme", StorageTestKit.Selector("db.cpu", new LabelMatcher("env", MatchOp.Equal, "prod")), T0 + 600, T0 + 3000));
            AssertNothingHeld(cluster);
        }
        finally
        {
            Dispose(calls);
        }
    }

    [Fact]
    public async Task ASlowLoadDoesNotFailActivationWritesAnswerLoadingAndTheDataArriveExact()
    {
        List<IngestProfile[]> calls = Calls(seed: 7);
        IngestProfile late = StorageTestKit.Profile(calls[0][0].Series, T0 + 100, ("main;late", 7));
        try
        {
            var hooks = new SlowShards();
            await using ShardCluster cluster = await StartWithData(hooks, calls, loadWaitSeconds: 60);
            string[] keys = [.. Enumerable.Range(0, 4).Select(n => ShardGrainKey.For("acme", n)).Where(k => cluster.SiloOf(k) != null)];
            Assert.NotEmpty(keys);
            foreach (string key in keys) await cluster.Cluster.DeactivateAsync(cluster.Grain(key));
            hooks.BlockOpens();

            // A write to a loading shard: the grain activates at once, the write waits its bounded time, then
            // answers "loading, retry" with a short Retry-After; nothing is stored.
            string lateKey = ShardGrainKey.For("acme", ProfileStorage.ShardNumber(late.Series, 4));
            var loading = await Assert.ThrowsAsync<ShardLoadingException>(async () => await cluster.Storage(0).IngestAsync([late], TestContext.Current.CancellationToken));
            Assert.Contains($"shard {lateKey} is loading, retry", loading.Message, StringComparison.Ordinal);
            Assert.Equal(ShardLoadingException.RetrySeconds, loading.RetryAfterSeconds);

            // A query meanwhile waits for the loads, which outlast the call timeout 3 times over.
            Task<List<string>> answers = Answers(cluster.Storage(1));
            await WaitUntil(() => keys.All(hooks.OpenWaiting), "every shard's load to be under way");
            await Task.Delay(TimeSpan.FromSeconds(3 * CallTimeoutSeconds), TestContext.Current.CancellationToken); // the slow load
            Assert.False(answers.IsCompleted, "the query waits for the loads");
            hooks.ReleaseOpens();
            List<string> expected = await SingleNodeAnswers(calls);
            Assert.Equal(expected, await answers.WaitAsync(Bound, TestContext.Current.CancellationToken));

            // Loaded: the refused write goes through now, exactly once.
            await cluster.Storage(2).IngestAsync([late], TestContext.Current.CancellationToken);
            Assert.Equal(await SingleNodeAnswers([.. calls, [late]]), await Answers(cluster.Storage(0)));
        }
        finally
        {
            Dispose(calls);
            late.Stacks.Dispose();
        }
    }

    /// <summary>The real HTTP server in this process as a one-silo cluster on <paramref name="redis"/> (free loopback silo and
    /// gateway ports, call timeout <see cref="CallTimeoutSeconds"/>, 4 shards) with <paramref name="hooks"/> in its grains.</summary>
    private static Task<InProcessServer> StartHttpCluster(SlowShards hooks, ProfileArena.Processes.RedisProcess redis)
    {
        static string Port() => ProfileArena.Processes.RedisProcess.FreeLoopbackPort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        return InProcessServer.StartWith(null, s => s.AddSingleton<ShardGrainHooks>(hooks),
            "--Cluster:Mode", "Redis", "--Cluster:ConnectionString", redis.ConnectionString, "--Cluster:ClusterId", "http-" + Guid.NewGuid().ToString("N")[..8],
            "--Cluster:SiloPort", Port(), "--Cluster:GatewayPort", Port(), "--Cluster:CallTimeoutSeconds", CallTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--Storage:ShardCount", "4");
    }

    [Fact]
    public async Task AnAbortedHttpRenderCancelsTheShardsWork()
    {
        var hooks = new SlowShards { QueryDelay = Bound };
        using var redis = await ProfileArena.Processes.RedisProcess.StartAsync(logFile: null, TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        await using InProcessServer server = await StartHttpCluster(hooks, redis);
        using (var ingest = await server.Client.PostAsync($"/ingest?name=api.cpu&from={T0}&until={T0 + 10}", new StringContent("main;work 5\n"), TestContext.Current.CancellationToken))
            Assert.Equal(System.Net.HttpStatusCode.OK, ingest.StatusCode);
        using var aborted = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        Task<HttpResponseMessage> render = server.Client.GetAsync($"/render?query=api.cpu&from={T0}&until={T0 + 60}", aborted.Token);
        await WaitUntil(() => hooks.QueriesStarted == 4, "the render's 4 shard parts to start");
        aborted.Cancel(); // the client goes away: Kestrel's RequestAborted
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => render);
        // The server cancels every shard's part (long before Cluster:QueryTimeoutSeconds, 300 s, would).
        foreach (string key in hooks.StartedKeys) await hooks.Cancelled(key).WaitAsync(Bound, TestContext.Current.CancellationToken);
        Assert.Equal(4, hooks.StartedKeys.Count);
    }

    [Fact]
    public async Task AWriteAnsweredAfterTheCallTimeoutIs504OutcomeUnknownAndIsStoredOnce()
    {
        var hooks = new SlowShards();
        using var redis = await ProfileArena.Processes.RedisProcess.StartAsync(logFile: null, TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        await using InProcessServer server = await StartHttpCluster(hooks, redis);
        string ingest = $"/ingest?name=api.cpu&from={T0}&until={T0 + 10}";
        using (var first = await server.Client.PostAsync(ingest, new StringContent("main;work 5\n"), TestContext.Current.CancellationToken))
            Assert.Equal(System.Net.HttpStatusCode.OK, first.StatusCode);

        // The shard makes the write durable, then answers after three call timeouts: the caller cannot know.
        hooks.WriteAnswerDelay = TimeSpan.FromSeconds(3 * CallTimeoutSeconds);
        using (var late = await server.Client.PostAsync(ingest, new StringContent("main;late 7\n"), TestContext.Current.CancellationToken))
        {
            string body = await late.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            Assert.True(late.StatusCode == System.Net.HttpStatusCode.GatewayTimeout, $"{(int)late.StatusCode}: {body}");
            Assert.Contains("may or may not have been stored", body, StringComparison.Ordinal);
            Assert.DoesNotContain("nothing was stored", body, StringComparison.Ordinal);
        }
        hooks.WriteAnswerDelay = TimeSpan.Zero;
        await WaitUntil(() => hooks.WritesDelayed == 1 && hooks.WritesDelaying == 0, "the late answer to be sent");

        // It was stored (the 504 was honest: a 503 "nothing was stored" would have been false), once.
        using var render = await server.Client.GetAsync($"/render?query=api.cpu&from={T0}&until={T0 + 60}&format=collapsed", TestContext.Current.CancellationToken);
        string collapsed = await render.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.Equal(System.Net.HttpStatusCode.OK, render.StatusCode);
        Assert.Equal(["main;late 7", "main;work 5"], collapsed.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
    }

    /// <summary>The test hook: delays query parts (of one shard, or all) and holds loads behind a gate; records
    /// which delayed work was cancelled.</summary>
    private sealed class SlowShards : ShardGrainHooks
    {
        private readonly ConcurrentDictionary<string, TaskCompletionSource> _cancelled = new();
        private readonly ConcurrentDictionary<string, bool> _openWaiting = new();
        private readonly ConcurrentDictionary<string, bool> _startedKeys = new();
        private volatile TaskCompletionSource? _openGate;
        private int _started, _delayed;

        public TimeSpan QueryDelay { get; init; }

        /// <summary>Only this shard's parts are delayed (null: every shard's).</summary>
        public string? SlowKey { get; init; }

        public int QueriesStarted => Volatile.Read(ref _started);

        public int QueriesDelayed => Volatile.Read(ref _delayed);

        public IReadOnlyCollection<string> StartedKeys => [.. _startedKeys.Keys];

        public IReadOnlyCollection<string> QueriesCancelled => [.. _cancelled.Where(c => c.Value.Task.IsCompleted).Select(c => c.Key)];

        public Task Cancelled(string key) => _cancelled.GetOrAdd(key, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

        public bool OpenWaiting(string key) => _openWaiting.ContainsKey(key);

        public void BlockOpens() => _openGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        public void ReleaseOpens() => _openGate?.TrySetResult();

        public override async Task BeforeQuery(string key, CancellationToken cancellationToken)
        {
            if (QueryDelay == TimeSpan.Zero || (SlowKey != null && key != SlowKey)) return;
            _startedKeys[key] = true;
            Interlocked.Increment(ref _started);
            try
            {
                await Task.Delay(QueryDelay, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                _cancelled.GetOrAdd(key, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
                throw;
            }
            Interlocked.Increment(ref _delayed);
        }

        /// <summary>How long a shard waits after making a write durable before it answers (zero: no wait).</summary>
        public TimeSpan WriteAnswerDelay { get; set; }

        public int WritesDelayed => Volatile.Read(ref _writesDelayed);

        public int WritesDelaying => Volatile.Read(ref _writesDelaying);

        private int _writesDelayed, _writesDelaying;

        public override async Task AfterWrite(string key)
        {
            TimeSpan delay = WriteAnswerDelay;
            if (delay == TimeSpan.Zero) return;
            Interlocked.Increment(ref _writesDelaying);
            await Task.Delay(delay);
            Interlocked.Increment(ref _writesDelayed);
            Interlocked.Decrement(ref _writesDelaying);
        }

        public override async Task BeforeOpen(string key, CancellationToken cancellationToken)
        {
            if (_openGate is not { } gate) return;
            _openWaiting[key] = true;
            await gate.Task.WaitAsync(Bound, cancellationToken);
        }
    }
}
