using System.Diagnostics;
using System.IO.Compression;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using ProfileArena.Formats;
using ProfileArena.Server.Ingest;
using ProfileArena.Server.Query;
using ProfileArena.Server.Storage;

namespace ProfileArena.Server.Hosting;

/// <summary>
/// <c>Server:WarmupSeconds</c>: before <c>/readyz</c> says ready, the process runs its own hot paths — a gzipped pprof
/// push decoded as <c>/ingest</c> decodes it, stored, applied and merged into every level by a scratch storage in a
/// temporary directory, then 1 h and 24 h flame graphs queried, truncated and exported as <c>/render</c> does — round
/// after round until the JIT has compiled nothing new for a while (<see cref="System.Runtime.JitInfo"/>) or the time
/// is up; then it deletes the scratch directory and collects once. Why: the runtime first compiles a method quickly and
/// unoptimised and recompiles it optimised only once it is hot and compilation has calmed down, so a server that
/// took traffic straight away answered its first 10–15 s at several times its usual latency (ingest p99 ≈ 0.5 s at
/// 100 M nodes; perf/README "Tenth session"); what the warm-up leaves in pools is promoted by one collection before
/// traffic instead of by the first collections under it.
/// </summary>
/// <remarks>Threads: runs once, on a pool thread, beside the storage's replay (which it never touches: its storage
/// is its own). <see cref="Done"/> completes when it ends, however it ends: a failure is logged, never fatal (the
/// server is only slower to start with). Stopping the host cancels it.</remarks>
internal sealed class StartupWarmup(IOptions<ServerOptions> options, IConfiguration configuration, ILogger<StartupWarmup> log) : BackgroundService
{
    /// <summary>How long the JIT must have compiled nothing new before the warm-up ends early.</summary>
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(600);

    private const string Tenant = "warmup";
    private readonly TaskCompletionSource<WarmupOutcome> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the warm-up has ended (at once when <c>Server:WarmupSeconds</c> is 0).</summary>
    public Task<WarmupOutcome> Done => _done.Task;

    /// <summary>Refuses a setting out of range, naming it (the server calls it at start).</summary>
    public static void CheckSettings(int seconds)
    {
        if (seconds is < 0 or > 600) throw new ArgumentException($"Server:WarmupSeconds must be 0 (no warm-up) to 600, not {seconds}");
    }

    // BackgroundService (.NET 10) runs all of it on the thread pool: the host's start is not held up.
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        WarmupOutcome outcome = WarmupOutcome.None;
        try
        {
            int seconds = options.Value.WarmupSeconds;
            if (seconds > 0) outcome = await RunAsync(options.Value, ScratchOptions(configuration.GetSection(StorageOptions.Section)), TimeSpan.FromSeconds(seconds), stoppingToken).ConfigureAwait(false);
            if (outcome.Rounds > 0)
                log.LogInformation("Warmed up in {Seconds:0.0} s: {Rounds} rounds ({Trees} trees), {Methods} methods compiled meanwhile, {Reason}",
                    outcome.Elapsed.TotalSeconds, outcome.Rounds, outcome.Trees, outcome.MethodsCompiled, outcome.Quiet ? "the JIT had gone quiet" : "time up (Server:WarmupSeconds)");
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            // Only a slower start is at stake: say so and serve.
            log.LogWarning(e, "Warm-up failed; the server serves without it (only its first seconds under load are slower)");
        }
        finally
        {
            _done.TrySetResult(outcome);
        }
    }

    /// <summary>The scratch storage's settings: the server's engine, levels and retention (so the warm-up runs the code
    /// the server will), in a fresh temporary directory on local disk, two shards, no budget, no periodic snapshot.</summary>
    internal static StorageOptions ScratchOptions(IConfiguration? storageSection)
    {
        StorageOptions scratch = storageSection == null ? new StorageOptions() : StorageOptions.From(storageSection);
        scratch.DataDir = Path.Combine(Path.GetTempPath(), $"profilearena-warmup-{Environment.ProcessId}-{Guid.NewGuid():N}");
        scratch.Medium = StorageOptions.LocalMedium;
        scratch.ShardCount = 2;
        scratch.MaxNativeBytes = 0;
        scratch.MergeCacheBytes = Math.Min(scratch.MergeCacheBytes, 32L << 20);
        scratch.SnapshotIntervalSeconds = 0;
        return scratch;
    }

    /// <summary>Runs warm-up rounds on a scratch storage (<paramref name="scratch"/>, its directory deleted after) until
    /// the JIT is quiet or <paramref name="budget"/> is spent.</summary>
    internal static async Task<WarmupOutcome> RunAsync(ServerOptions server, StorageOptions scratch, TimeSpan budget, CancellationToken cancellationToken)
    {
        long started = Stopwatch.GetTimestamp();
        string dir = scratch.DataDir;
        int rounds = 0;
        long trees = 0;
        bool quiet = false;
        long methodsAtStart = System.Runtime.JitInfo.GetCompiledMethodCount();
        try
        {
            using var storage = new ProfileStorage(scratch, TimeProvider.System, NullLoggerFactory.Instance);
            await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
            byte[][] bodies = [SyntheticPush(1), SyntheticPush(2), SyntheticPush(3)];
            var decoder = new IngestDecoder(server);
            long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds() / 10 * 10;
            long methods = methodsAtStart, lastChange = Stopwatch.GetTimestamp();
            while (Stopwatch.GetElapsedTime(started) < budget)
            {
                cancellationToken.ThrowIfCancellationRequested();
                // Forward in time: each round's pushes open new 10 s buckets (the usual case) and merge into the coarser
                // levels' buckets, and no retention setting expires them.
                await RoundAsync(storage, decoder, server, bodies, now + 10 * rounds, rounds, cancellationToken).ConfigureAwait(false);
                rounds++;
                long compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
                if (compiled != methods)
                {
                    methods = compiled;
                    lastChange = Stopwatch.GetTimestamp();
                }
                else if (Stopwatch.GetElapsedTime(lastChange) >= Quiet)
                {
                    quiet = true;
                    break;
                }
            }
            trees = storage.Stats().Trees;
            await storage.StopAsync(snapshot: false).ConfigureAwait(false);
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
        }
        // What the rounds left in pools and caches is promoted now, by one collection before traffic.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        return new WarmupOutcome(rounds, trees, Stopwatch.GetElapsedTime(started), System.Runtime.JitInfo.GetCompiledMethodCount() - methodsAtStart, quiet);
    }

    /// <summary>One round: four series pushed as /ingest decodes and stores them, then a 1 h and a 24 h flame graph of
    /// them merged, truncated and exported as /render does.</summary>
    private static async Task RoundAsync(ProfileStorage storage, IngestDecoder decoder, ServerOptions server, byte[][] bodies, long from, int round, CancellationToken cancellationToken)
    {
        for (int series = 0; series < 4; series++)
        {
            var query = new QueryCollection(new Dictionary<string, StringValues>
            {
                ["name"] = $"warmup{{pod=\"{series}\"}}",
                ["from"] = from.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["until"] = (from + 10).ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["format"] = "pprof",
                ["spyName"] = "gospy",
            });
            IngestParameters parameters = IngestParameters.Parse(query, server, DateTimeOffset.UtcNow);
            // Agents send pprof gzipped in the body: the decoder inflates it, as for them.
            List<IngestProfile> profiles = decoder.Decode(Tenant, parameters, "application/octet-stream", bodies[(round + series) % bodies.Length]);
            try
            {
                await storage.IngestAsync(profiles, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                foreach (IngestProfile p in profiles) p.Stacks.Dispose();
            }
        }
        ParsedSelector selector = SelectorParser.Parse("query", "warmup.cpu", requireName: true, server.MaxSelectorLength);
        foreach (long range in (long[])[3600, 86400])
        {
            using TreeStore store = QueryEndpoints.NewQueryStore(server);
            ProfileTree tree = store.CreateTree();
            long until = from + 10;
            QueryResult result = await storage.QueryTruncatedAsync(Tenant, selector.ToSeriesSelector(), until - range, until, tree, QueryEndpoints.DefaultMaxNodes, cancellationToken).ConfigureAwait(false);
            int cut = QueryEndpoints.Fold(tree, result, QueryEndpoints.DefaultMaxNodes);
            FlamebearerFormat.Export(tree, Stream.Null, QueryEndpoints.Options(selector.Name!, result, cut));
        }
    }

    /// <summary>A gzipped CPU profile of 400 stacks, 6–29 frames deep over a few hundred functions, as an agent sends it.</summary>
    internal static byte[] SyntheticPush(int seed)
    {
        var random = new Random(seed);
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        var frames = new List<string>();
        for (int s = 0; s < 400; s++)
        {
            frames.Clear();
            int depth = 6 + random.Next(24);
            for (int d = 0; d < depth; d++) frames.Add($"github.com/acme/service/pkg{d % 7}.Func{random.Next(12 + 4 * d)}");
            tree.Insert(string.Join(';', frames), (ulong)(1 + random.Next(50)));
        }
        using var pprof = new MemoryStream();
        using (var gzip = new GZipStream(pprof, CompressionLevel.Fastest, leaveOpen: true))
            PprofFormat.Export(tree, gzip, new PprofExportOptions { SampleType = "cpu", SampleUnit = "nanoseconds", PeriodType = new PprofValueType("cpu", "nanoseconds"), Period = 10_000_000 });
        return pprof.ToArray();
    }
}

/// <summary>What a warm-up did: rounds run, trees its scratch storage held at the end, how long, methods the JIT
/// compiled meanwhile (any thread), and whether it ended because the JIT had gone quiet (else the time was up, or it
/// did not run).</summary>
internal readonly record struct WarmupOutcome(int Rounds, long Trees, TimeSpan Elapsed, long MethodsCompiled, bool Quiet)
{
    public static readonly WarmupOutcome None = new(0, 0, TimeSpan.Zero, 0, false);
}
