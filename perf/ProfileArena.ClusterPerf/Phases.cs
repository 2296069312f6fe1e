using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using ProfileArena.ServerLoad;

namespace ProfileArena.ClusterPerf;

/// <summary>
/// The measured phases, run against one <see cref="Deployment"/>: a fixed data set (the same pushes for both
/// configurations), the fan-out renders of it, ingest + 1 h renders for a fixed time, and (cluster only) the
/// kill -9 failover. Series are ServerLoad's: <c>svcK{region,pod}</c> → <c>svcK.cpu</c>, K services × L label sets.
/// </summary>
public sealed class Phases(ClusterOptions options, Corpus corpus, long preloadStart, TextWriter log)
{
    private int SeriesCount => options.Corpus.Services * options.Corpus.LabelSets;

    /// <summary>The fixed data set's time range (identical for both configurations, so the renders see the same data).</summary>
    public (long From, long Until) PreloadRange => (preloadStart, preloadStart + options.PreloadTicks * 10L);

    /// <summary>Pushes every series once per tick over the preload range, spread over the processes; count-bounded.</summary>
    public async Task<(int Ok, int Failed)> PreloadAsync(Deployment d)
    {
        int total = options.PreloadTicks * SeriesCount, next = -1, ok = 0, failed = 0;
        await Task.WhenAll(Enumerable.Range(0, options.Connections).Select(async c =>
        {
            HttpClient http = d.Clients[c % d.Clients.Length];
            for (int job; (job = Interlocked.Increment(ref next)) < total;)
            {
                var (success, _, _) = await PushAsync(http, job, preloadStart + job / SeriesCount * 10L);
                Interlocked.Increment(ref success ? ref ok : ref failed);
            }
        }));
        return (ok, failed);
    }

    /// <summary>Sequential renders of <c>svc0.cpu{}</c> (L series merged) over the fixed data set through the first
    /// process; the server's own figures (merge phase, trees merged) from its /metrics before and after.</summary>
    public async Task<FanOutResult> FanOutAsync(Deployment d)
    {
        HttpClient http = d.Clients[0];
        var (from, until) = PreloadRange;
        string query = Uri.EscapeDataString("svc0.cpu{}");
        // The answer itself, as folded text: hashed, so the two configurations' answers can be compared.
        string collapsed = await http.GetStringAsync($"/render?query={query}&from={from}&until={until}&format=collapsed");
        Dictionary<string, double> before = await Metrics.RenderPhases(http, null);
        var ms = new List<double>();
        int failed = 0;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < options.FanOutRenders && clock.Elapsed < TimeSpan.FromSeconds(Math.Max(60, options.LoadSeconds)); i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            try
            {
                using HttpResponseMessage r = await http.GetAsync($"/render?query={query}&from={from}&until={until}&format=json&maxNodes=1024");
                await r.Content.ReadAsByteArrayAsync();
                if (r.IsSuccessStatusCode) ms.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                else failed++;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                failed++;
            }
        }
        Dictionary<string, double> phases = await Metrics.RenderPhases(http, before);
        return new FanOutResult
        {
            Render = Percentiles.Of([.. ms]),
            Failed = failed,
            ServerMergeMs = phases.GetValueOrDefault("merge", double.NaN),
            ServerRenderPhasesMs = phases.Where(p => !p.Key.StartsWith('#') && p.Key != "trees merged per render").ToDictionary(),
            TreesMergedPerRender = phases.GetValueOrDefault("trees merged per render", double.NaN),
            ShardsHoldingData = (int)await d.GaugeSum("profilearena_storage_shards"),
            AnswerSha256 = Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(collapsed))),
            AnswerLines = collapsed.Count(ch => ch == '\n'),
        };
    }

    /// <summary>Ingest as fast as the processes take it over <see cref="ClusterOptions.Connections"/> connections (connection
    /// c to process c mod N) while <see cref="ClusterOptions.QueryConnections"/> connections render the last hour of a
    /// random service (through process q mod N), for <see cref="ClusterOptions.LoadSeconds"/>; pushes bounded to one
    /// simulated hour.</summary>
    public async Task<LoadResult> LoadAsync(Deployment d, long loadStart)
    {
        int maxJobs = 360 * SeriesCount, next = -1;
        var ingest = new ConcurrentBag<double>();
        var renders = new ConcurrentBag<double>();
        var failures = new ConcurrentDictionary<int, int>();
        int renderFailures = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(options.LoadSeconds));
        var clock = Stopwatch.StartNew();
        double ingestSeconds = 0;
        Task[] pushers = [.. Enumerable.Range(0, options.Connections).Select(async c =>
        {
            HttpClient http = d.Clients[c % d.Clients.Length];
            for (int job; !stop.IsCancellationRequested && (job = Interlocked.Increment(ref next)) < maxJobs;)
            {
                var (ok, ms, status) = await PushAsync(http, job, loadStart + job / SeriesCount * 10L);
                if (ok) ingest.Add(ms);
                else failures.AddOrUpdate(status, 1, (_, n) => n + 1);
            }
        })];
        Task[] queriers = [.. Enumerable.Range(0, options.QueryConnections).Select(async q =>
        {
            HttpClient http = d.Clients[(q + 1) % d.Clients.Length];
            var random = new Random(options.Corpus.Seed + q);
            while (!stop.IsCancellationRequested)
            {
                long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
                string query = Uri.EscapeDataString($"svc{random.Next(options.Corpus.Services)}.cpu{{}}");
                long t0 = Stopwatch.GetTimestamp();
                try
                {
                    using HttpResponseMessage r = await http.GetAsync($"/render?query={query}&from={now - 3600}&until={now}&format=json&maxNodes=1024");
                    await r.Content.ReadAsByteArrayAsync();
                    if (r.IsSuccessStatusCode) renders.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    else Interlocked.Increment(ref renderFailures);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    Interlocked.Increment(ref renderFailures);
                }
            }
        })];
        await Task.WhenAll(pushers);
        ingestSeconds = clock.Elapsed.TotalSeconds;
        await stop.CancelAsync();
        await Task.WhenAll(queriers);
        return new LoadResult
        {
            Seconds = ingestSeconds,
            Pushes = ingest.Count,
            PushesPerSecond = ingest.Count / ingestSeconds,
            Ingest = Percentiles.Of([.. ingest]),
            FailedPushesByStatus = failures.ToDictionary(p => p.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), p => p.Value),
            Render1h = Percentiles.Of([.. renders]),
            FailedRenders = renderFailures,
            NodesStored = (long)await d.GaugeSum("profilearena_storage_nodes"),
            SeriesStored = (long)await d.GaugeSum("profilearena_storage_series"),
        };
    }

    /// <summary>
    /// Cluster only. Writes one new series (<c>failover.cpu</c>), finds the silo now hosting its shard (the one whose
    /// series gauge rose by one), takes the expected answers through another silo, kills the host with SIGKILL and
    /// renders through that other silo every 100 ms until the answer is the expected one (bounded).
    /// </summary>
    public async Task<FailoverResult> FailoverAsync(Deployment d)
    {
        var result = new FailoverResult();
        int n = d.Servers.Count;
        var before = new double?[n];
        for (int i = 0; i < n; i++) before[i] = await d.Gauge(i, "profilearena_storage_series");
        long at = DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 120;
        using (var content = new ByteArrayContent(corpus.Bodies[0][0]))
        {
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            using HttpResponseMessage r = await d.Clients[0].PostAsync($"/ingest?name={Uri.EscapeDataString("failover{}")}&from={at}&until={at + 10}&format=pprof&spyName=clusterperf", content);
            if (!r.IsSuccessStatusCode) { result.Note = $"the failover push was answered {(int)r.StatusCode}"; return result; }
        }
        int host = -1;
        for (int i = 0; i < n; i++)
        {
            double? after = await d.Gauge(i, "profilearena_storage_series");
            if (after - before[i] == 1) host = i;
        }
        if (host < 0) { result.Note = "no silo's series gauge rose by one: the host of the new series' shard is unknown"; return result; }
        int survivor = (host + 1) % n;
        result.KilledSilo = host;
        result.RenderedThrough = survivor;
        result.ShardsOnKilledSilo = (int)(await d.Gauge(host, "profilearena_storage_shards") ?? 0);
        HttpClient http = d.Clients[survivor];
        string failoverUrl = $"/render?query={Uri.EscapeDataString("failover.cpu{}")}&from={at - 10}&until={at + 20}&format=collapsed";
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string loadUrl = $"/render?query={Uri.EscapeDataString("svc0.cpu{}")}&from={now - 4 * 3600}&until={now}&format=collapsed";
        string expected = await http.GetStringAsync(failoverUrl);
        string expectedLoad = await http.GetStringAsync(loadUrl);
        result.ExpectedLines = expected.Count(ch => ch == '\n');

        log.WriteLine($"[cluster] kill -9 of silo {host} (pid {d.Servers[host].Pid}, {result.ShardsOnKilledSilo} shards); rendering through silo {survivor} every 100 ms");
        var clock = Stopwatch.StartNew();
        d.Servers[host].Kill();
        result.KillReturnedMs = clock.Elapsed.TotalMilliseconds;
        var statuses = new Dictionary<string, int>();
        using var poll = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = http.BaseAddress, Timeout = TimeSpan.FromSeconds(options.FailoverSeconds) };
        for (int attempt = 0; clock.Elapsed < TimeSpan.FromSeconds(options.FailoverSeconds) && attempt < options.FailoverSeconds * 10; attempt++)
        {
            TimeSpan due = TimeSpan.FromMilliseconds(result.KillReturnedMs + attempt * 100);
            if (due > clock.Elapsed) await Task.Delay(due - clock.Elapsed);
            string outcome;
            try
            {
                using HttpResponseMessage r = await poll.GetAsync(failoverUrl);
                string body = await r.Content.ReadAsStringAsync();
                if (r.IsSuccessStatusCode && body == expected)
                {
                    result.FirstCorrectRenderMs = clock.Elapsed.TotalMilliseconds;
                    result.Attempts = attempt + 1;
                    break;
                }
                outcome = r.IsSuccessStatusCode ? "200 with another answer" : ((int)r.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                outcome = e.GetType().Name;
            }
            result.FailedRequests++;
            statuses[outcome] = statuses.GetValueOrDefault(outcome) + 1;
        }
        result.FailuresByOutcome = statuses;
        if (result.FirstCorrectRenderMs is null) { result.Note = $"no correct render within {options.FailoverSeconds} s"; return result; }
        // Every acknowledged push of the load's first service, through the survivor after the move.
        result.LoadSeriesIntact = await http.GetStringAsync(loadUrl) == expectedLoad;
        return result;
    }

    /// <summary>One push: service and label set from the job number, one of the service's pre-built bodies.</summary>
    private async Task<(bool Ok, double Ms, int Status)> PushAsync(HttpClient http, int job, long from)
    {
        int series = job % SeriesCount, s = series / options.Corpus.LabelSets, l = series % options.Corpus.LabelSets;
        List<byte[]> variants = corpus.Bodies[s];
        byte[] body = variants[(job / SeriesCount + l) % variants.Count];
        string name = Uri.EscapeDataString($"svc{s}{{region=r{l % 3},pod=pod-{l}}}");
        long t0 = Stopwatch.GetTimestamp();
        try
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            using HttpResponseMessage r = await http.PostAsync($"/ingest?name={name}&from={from}&until={from + 10}&format=pprof&spyName=clusterperf&sampleRate=100", content);
            return (r.IsSuccessStatusCode, Stopwatch.GetElapsedTime(t0).TotalMilliseconds, (int)r.StatusCode);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return (false, 0, -1);
        }
    }
}

public sealed class FanOutResult
{
    public Percentiles Render { get; init; } = Percentiles.Of([]);
    public int Failed { get; init; }
    public double ServerMergeMs { get; init; }
    public Dictionary<string, double> ServerRenderPhasesMs { get; init; } = [];
    public double TreesMergedPerRender { get; init; }
    public int ShardsHoldingData { get; init; }
    public string AnswerSha256 { get; init; } = "";
    public int AnswerLines { get; init; }
}

public sealed class LoadResult
{
    public double Seconds { get; init; }
    public int Pushes { get; init; }
    public double PushesPerSecond { get; init; }
    public Percentiles Ingest { get; init; } = Percentiles.Of([]);
    public Dictionary<string, int> FailedPushesByStatus { get; init; } = [];
    public Percentiles Render1h { get; init; } = Percentiles.Of([]);
    public int FailedRenders { get; init; }
    public long NodesStored { get; init; }
    public long SeriesStored { get; init; }
}

public sealed class FailoverResult
{
    public int? KilledSilo { get; set; }
    public int? RenderedThrough { get; set; }
    public int ShardsOnKilledSilo { get; set; }
    public int ExpectedLines { get; set; }
    public double KillReturnedMs { get; set; }
    public double? FirstCorrectRenderMs { get; set; }
    public int Attempts { get; set; }
    public int FailedRequests { get; set; }
    public Dictionary<string, int> FailuresByOutcome { get; set; } = [];
    public bool? LoadSeriesIntact { get; set; }
    public string Note { get; set; } = "";
}
