using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ProfileArena.Verification;

namespace ProfileArena.ServerLoad;

/// <summary>One engine's run: ingest workers, query workers and a sampler against one server process.</summary>
public sealed class LoadRun(LoadOptions options, Corpus corpus, ServerProcess server, GcObserver gc, TextWriter log)
{
    private readonly ConcurrentQueue<(double At, double Ms, bool Ok, Dictionary<string, double>? Timing)> _ingests = new();
    private readonly ConcurrentQueue<(double At, double Ms, int RangeHours, bool Ok, Dictionary<string, double>? Timing)> _renders = new();
    private readonly ConcurrentDictionary<int, int> _failures = new();
    private readonly Stopwatch _clock = new();
    private long _nextJob = -1;
    private long _simulatedNow;
    private long _bytesSent;
    private string? _stopReason;

    /// <summary>Pushes issued so far (the job counter), for the fault tests' bookkeeping.</summary>
    public long Issued => Interlocked.Read(ref _nextJob) + 1;

    public async Task<EngineRun> RunAsync(string engine)
    {
        int seriesPerTick = options.Services * options.LabelSets;
        long ticks = options.SimulatedSeconds / 10;
        long totalJobs = options.Soak ? long.MaxValue : ticks * seriesPerTick;
        long start = DateTimeOffset.UtcNow.ToUnixTimeSeconds() / 10 * 10 - options.SimulatedSeconds;
        if (options.StartPhaseSeconds >= 0) start = (start - options.StartPhaseSeconds) / 10_000 * 10_000 + options.StartPhaseSeconds;
        Interlocked.Exchange(ref _simulatedNow, start);
        string load0 = LoadAverage();
        var rows = new List<IntervalRow>();
        using var stopIngest = new CancellationTokenSource(TimeSpan.FromSeconds(options.MaxWallSeconds));
        using var stopQueries = new CancellationTokenSource();
        _clock.Start();
        GcTotals gcAtStart = gc.Totals();
        // This process's own collections: a pause here stops the clocks that time the server's answers (and delays sends).
        TimeSpan ownPause0 = GC.GetTotalPauseDuration();
        int[] ownGcs0 = [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];

        Task[] ingest = options.OpenLoop
            ? [Task.Run(() => OpenLoopIngest(start, seriesPerTick, totalJobs, stopIngest.Token))]
            : [.. Enumerable.Range(0, options.Connections).Select(_ => Task.Run(() => IngestWorker(start, seriesPerTick, totalJobs, stopIngest.Token)))];
        Task[] queries = options.RenderRate > 0
            ? [Task.Run(() => OpenLoopQueries(stopQueries.Token))]
            : [.. Enumerable.Range(0, options.QueryConnections).Select(i => Task.Run(() => QueryWorker(i, stopQueries.Token)))];
        Task allIngest = Task.WhenAll(ingest);

        // Sampler: every second, stop when the target is reached; a row every SampleSeconds.
        using var http = new HttpClient { BaseAddress = new Uri(server.Url), Timeout = TimeSpan.FromSeconds(30) };
        double lastRow = 0;
        long targetReachedAtMs = -1;
        GcTotals? gcAtWarm = null;
        int warmGcNumber = 0;
        Metrics last = new();
        while (!allIngest.IsCompleted)
        {
            await Task.WhenAny(allIngest, Task.Delay(1000));
            if (server.HasExited)
            {
                _stopReason = $"the server exited (code {server.ExitCode}) — see {server.LogPath}";
                stopIngest.Cancel();
                break;
            }
            last = await Metrics.Read(http) ?? last;
            if (last.Nodes >= options.TargetNodes && targetReachedAtMs < 0)
            {
                targetReachedAtMs = (long)_clock.Elapsed.TotalMilliseconds;
                if (!options.Soak)
                {
                    _stopReason ??= $"target of {options.TargetNodes:N0} nodes reached";
                    stopIngest.Cancel();
                }
            }
            double now = _clock.Elapsed.TotalSeconds;
            if (gcAtWarm is null && options.WarmupSeconds > 0 && now >= options.WarmupSeconds)
            {
                gcAtWarm = gc.Totals();
                warmGcNumber = gc.Collector.Snapshot().Select(g => g.Number).DefaultIfEmpty(0).Max();
            }
            if (now - lastRow >= options.SampleSeconds)
            {
                rows.Add(Row(lastRow, now, last));
                lastRow = now;
            }
        }
        try { await allIngest; } catch (OperationCanceledException) { }
        _stopReason ??= stopIngest.IsCancellationRequested ? $"--max-seconds {options.MaxWallSeconds} reached" : "all simulated ticks pushed";
        double ingestEnd = _clock.Elapsed.TotalSeconds;
        stopQueries.Cancel();
        try { await Task.WhenAll(queries); } catch (OperationCanceledException) { }
        Dictionary<string, double> phasesUnderLoad = server.HasExited ? [] : await Metrics.RenderPhases(http, null);
        Dictionary<string, double> ingestPhases = server.HasExited ? [] : await Metrics.IngestPhases(http);
        List<(double Ms, double Share)> ingestWithin = server.HasExited ? [] : await Metrics.IngestWithin(http);
        string ownGc = $"{GC.CollectionCount(0) - ownGcs0[0]} / {GC.CollectionCount(1) - ownGcs0[1]} / {GC.CollectionCount(2) - ownGcs0[2]} GCs, {(GC.GetTotalPauseDuration() - ownPause0).TotalMilliseconds:0.0} ms paused";
        int quietFrom = _renders.Count;
        if (options.QuietRenderSeconds > 0 && !server.HasExited)
        {
            using var quiet = new CancellationTokenSource(TimeSpan.FromSeconds(options.QuietRenderSeconds));
            await QueryWorker(99, quiet.Token, quiet: true);
        }
        if (!server.HasExited) last = await Metrics.Read(http) ?? last;
        Dictionary<string, double> phases = server.HasExited ? [] : await Metrics.RenderPhases(http, phasesUnderLoad);
        rows.Add(Row(lastRow, _clock.Elapsed.TotalSeconds, last));
        await Task.Delay(1500); // GC events of the last second reach the session
        GcTotals gcTotals = gc.Totals();
        long rssPeak = rows.Count == 0 ? 0 : rows.Max(r => r.RssBytes);

        HeapSnapshot? heap = null;
        if (options.HeapSnapshot && !server.HasExited)
        {
            log.WriteLine($"[{engine}] heap snapshot ({last.Nodes:N0} nodes stored)...");
            try
            {
                heap = gc.TakeHeapSnapshot(TimeSpan.FromMinutes(3), log);
                log.WriteLine($"[{engine}]   {heap.LiveObjects:N0} live objects, {heap.LiveBytes:N0} bytes, {heap.Seconds:0.0} s");
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException or IOException)
            {
                log.WriteLine($"[{engine}]   heap snapshot failed: {e.Message}");
            }
        }

        var ingests = _ingests.ToArray();
        GcRecord[] serverGcs = [.. gc.Collector.Snapshot().Where(g => !g.Snapshot)];
        var renders = _renders.Take(quietFrom).ToArray();
        var quietRenders = _renders.Skip(quietFrom).ToArray();
        double[] okIngest = [.. ingests.Where(i => i.Ok).Select(i => i.Ms)];
        return new EngineRun
        {
            Engine = engine,
            StopReason = _stopReason,
            LoadAverageStart = load0,
            LoadAverageEnd = LoadAverage(),
            IngestSeconds = ingestEnd,
            Pushes = ingests.Length,
            PushesAcknowledged = okIngest.Length,
            Failures = _failures.ToDictionary(kv => kv.Key.ToString(CultureInfo.InvariantCulture), kv => kv.Value),
            PushesPerSecond = okIngest.Length / Math.Max(1e-9, ingestEnd),
            MegabytesPerSecond = Interlocked.Read(ref _bytesSent) / 1e6 / Math.Max(1e-9, ingestEnd),
            Ingest = Percentiles.Of(okIngest),
            Render1h = Percentiles.Of([.. renders.Where(r => r.Ok && r.RangeHours == 1).Select(r => r.Ms)]),
            Render24h = Percentiles.Of([.. renders.Where(r => r.Ok && r.RangeHours == 24).Select(r => r.Ms)]),
            RenderFailures = renders.Count(r => !r.Ok),
            RenderPhasesMeanMs = phasesUnderLoad,
            Render1hBreakdown = PhaseBreakdown.Of([.. renders.Where(r => r.Ok && r.RangeHours == 1).Select(r => (r.Ms, r.Timing))], ["merge", "truncate", "export"], "storage-wait"),
            IngestBreakdown = PhaseBreakdown.Of([.. ingests.Where(i => i.Ok).Select(i => (i.Ms, i.Timing))], ["read", "decode", "store"], null),
            IngestPhasesMeanMs = ingestPhases,
            IngestServerWithin = [.. ingestWithin.Select(w => $"{w.Ms:0.#} ms {w.Share * 100:0.0} %")],
            LoadGeneratorGc = ownGc,
            QuietRender1h = Percentiles.Of([.. quietRenders.Where(r => r.Ok && r.RangeHours == 1).Select(r => r.Ms)]),
            QuietRender24h = Percentiles.Of([.. quietRenders.Where(r => r.Ok && r.RangeHours == 24).Select(r => r.Ms)]),
            QuietRenderPhasesMeanMs = phases,
            NodesStored = last.Nodes,
            Trees = last.Trees,
            Series = last.Series,
            NativeBytes = last.NativeBytes,
            RssBytes = rows.Count == 0 ? 0 : rows[^1].RssBytes,
            RssPeakBytes = rssPeak,
            ManagedHeapBytes = gc.LastHeapBytes(),
            ManagedHeapPeakBytes = gc.Collector.Snapshot().Where(g => !g.Snapshot).Select(g => g.HeapBytesAfter).DefaultIfEmpty(0).Max(),
            GcCountByGeneration = [.. Enumerable.Range(0, 3).Select(g => gcTotals.CountByGeneration[g] - gcAtStart.CountByGeneration[g])],
            GcTotalPauseMs = gcTotals.TotalPauseMs - gcAtStart.TotalPauseMs,
            GcMaxPauseMs = serverGcs.Select(g => g.LongestSuspensionMs).DefaultIfEmpty(0).Max(),
            GcLongestPauses = [.. serverGcs.OrderByDescending(g => g.LongestSuspensionMs).Take(8).Select(SteadyFigures.DescribePause)],
            GcLargeAllocations = [.. gc.LargeAllocations().Take(8).Select(kv => $"{kv.Value.Bytes / 1048576.0:N0} MiB ({kv.Value.Ticks} ticks) {kv.Key}")],
            GcSmallAllocations = [.. gc.SmallAllocations().Take(12).Select(kv => $"{kv.Value.Bytes / 1048576.0:N0} MiB ({kv.Value.Ticks} ticks) {kv.Key}")],
            GcPercentOfTime = 100 * (gcTotals.TotalPauseMs - gcAtStart.TotalPauseMs) / Math.Max(1e-9, ingestEnd * 1000),
            GcEventsLost = gc.EventsLost,
            GcReasons = gc.Collector.Snapshot().Where(g => !g.Snapshot).GroupBy(g => $"gen{g.Generation} {g.Reason} {g.Type}")
                .OrderByDescending(g => g.Count()).ToDictionary(g => g.Key, g => g.Count()),
            LiveObjects = heap?.LiveObjects,
            LiveBytes = heap?.LiveBytes,
            TopTypes = heap?.TopByCount(8).Select(t => $"{t.Value.Count:N0} {t.Key}").ToList(),
            TopTypesByBytes = heap?.Types.OrderByDescending(t => t.Value.Bytes).Take(8).Select(t => $"{t.Value.Bytes / 1048576.0:0.0} MiB in {t.Value.Count:N0} {t.Key}").ToList(),
            Steady = gcAtWarm is null ? null : SteadyFigures.Of(options.WarmupSeconds, ingestEnd, ingests.Select(i => (i.At, i.Ms, i.Ok)), renders.Select(r => (r.At, r.Ms, r.RangeHours, r.Ok)),
                [.. serverGcs.Where(g => g.Number > warmGcNumber)], gcAtWarm, gcTotals),
            Rows = rows,
        };
    }

    private IntervalRow Row(double from, double until, Metrics m)
    {
        var ingests = _ingests.Where(i => i.At >= from && i.At < until).ToArray();
        var renders = _renders.Where(r => r.At >= from && r.At < until).ToArray();
        GcTotals totals = gc.Totals();
        return new IntervalRow
        {
            Seconds = until,
            NodesStored = m.Nodes,
            NativeBytes = m.NativeBytes,
            RssBytes = server.RssBytes(),
            ManagedHeapBytes = gc.LastHeapBytes(),
            PushesPerSecond = ingests.Count(i => i.Ok) / Math.Max(1e-9, until - from),
            IngestP50 = Percentiles.At([.. ingests.Where(i => i.Ok).Select(i => i.Ms)], 0.50),
            IngestP99 = Percentiles.At([.. ingests.Where(i => i.Ok).Select(i => i.Ms)], 0.99),
            Render1hP99 = Percentiles.At([.. renders.Where(r => r.Ok && r.RangeHours == 1).Select(r => r.Ms)], 0.99),
            Render24hP99 = Percentiles.At([.. renders.Where(r => r.Ok && r.RangeHours == 24).Select(r => r.Ms)], 0.99),
            GcCountByGeneration = totals.CountByGeneration,
            GcTotalPauseMs = totals.TotalPauseMs,
            GcMaxPauseMsSoFar = totals.MaxPauseMsByGeneration.Max(),
        };
    }

    /// <summary>Closed loop: each of <see cref="LoadOptions.Connections"/> workers sends its next push once the previous
    /// one was answered (paced by <see cref="LoadOptions.PushRate"/> when set, but never ahead of the answers): a slow
    /// server slows the arrivals, so latency here is service time plus queueing behind at most N pushes.</summary>
    private async Task IngestWorker(long start, int seriesPerTick, long totalJobs, CancellationToken stop)
    {
        using var http = Client(TimeSpan.FromSeconds(120));
        while (!stop.IsCancellationRequested)
        {
            long job = Interlocked.Increment(ref _nextJob);
            if (job >= totalJobs) return;
            long tick = job / seriesPerTick;
            if (options.PushRate > 0)
            {
                double due = job / options.PushRate * 1000 - _clock.Elapsed.TotalMilliseconds;
                if (due > 0) await Task.Delay(TimeSpan.FromMilliseconds(due), stop).ContinueWith(_ => { }, TaskScheduler.Default);
                if (stop.IsCancellationRequested) return;
            }
            long from;
            if (options.Soak)
            {
                // Real time: a tick is due at the next 10 s boundary; retention then works against the real clock.
                long dueAt = tick * 10_000;
                double wait = dueAt - _clock.Elapsed.TotalMilliseconds;
                if (wait > 0) await Task.Delay(TimeSpan.FromMilliseconds(wait), stop).ContinueWith(_ => { }, TaskScheduler.Default);
                if (stop.IsCancellationRequested) return;
                from = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            }
            else
            {
                from = start + tick * 10;
            }
            await Push(http, job, from, seriesPerTick, _clock.Elapsed.TotalMilliseconds);
            if (_failures.Values.Sum() > 1000)
            {
                _stopReason ??= "more than 1000 failed pushes";
                return;
            }
        }
    }

    /// <summary>Open loop (<c>--open-loop</c>): push k is sent at k / <see cref="LoadOptions.PushRate"/> seconds whatever
    /// the answers to earlier pushes, each on a connection of its own (up to <see cref="LoadOptions.MaxInFlight"/> in
    /// flight; past that the schedule waits, and the push's latency still counts from its due time). Latency is measured
    /// from the due time, so time a push spent waiting for a free slot counts too (no coordinated omission).</summary>
    private async Task OpenLoopIngest(long start, int seriesPerTick, long totalJobs, CancellationToken stop)
    {
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = options.MaxInFlight, PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
        {
            BaseAddress = new Uri(server.Url),
            Timeout = TimeSpan.FromSeconds(120),
        };
        using var slots = new SemaphoreSlim(options.MaxInFlight);
        var inFlight = new List<Task>();
        long capWaits = 0;
        try
        {
            for (long job = 0; job < totalJobs && !stop.IsCancellationRequested; job++)
            {
                Interlocked.Exchange(ref _nextJob, job);
                double dueMs = job / options.PushRate * 1000;
                double wait = dueMs - _clock.Elapsed.TotalMilliseconds;
                if (wait > 0) await Task.Delay(TimeSpan.FromMilliseconds(wait), stop).ContinueWith(_ => { }, TaskScheduler.Default);
                if (stop.IsCancellationRequested) break;
                if (!slots.Wait(0))
                {
                    capWaits++;
                    await slots.WaitAsync(stop).ContinueWith(_ => { }, TaskScheduler.Default);
                    if (stop.IsCancellationRequested) break;
                }
                long from = start + job / seriesPerTick * 10;
                long j = job;
                inFlight.Add(Task.Run(async () =>
                {
                    try { await Push(http, j, from, seriesPerTick, dueMs); }
                    finally { slots.Release(); }
                }, CancellationToken.None));
                if (inFlight.Count > 4096) inFlight.RemoveAll(t => t.IsCompleted);
                if (_failures.Values.Sum() > 1000)
                {
                    _stopReason ??= "more than 1000 failed pushes";
                    break;
                }
            }
        }
        finally
        {
            await Task.WhenAll(inFlight); // every push sent is answered (or times out) before the run ends
            if (capWaits > 0) log.WriteLine($"open loop: {capWaits:N0} pushes waited for one of the {options.MaxInFlight} in-flight slots (their latency counts from the due time)");
        }
    }

    /// <summary>One push of job <paramref name="job"/>; its latency counts from <paramref name="sinceMs"/> (the clock's ms).</summary>
    private async Task Push(HttpClient http, long job, long from, int seriesPerTick, double sinceMs)
    {
        int s = (int)(job % seriesPerTick / options.LabelSets), l = (int)(job % options.LabelSets);
        InterlockedMax(ref _simulatedNow, from + 10);
        List<byte[]> variants = corpus.Bodies[s];
        byte[] body = variants[Seeds.Of(options.Seed, job) % variants.Count];
        string name = Uri.EscapeDataString($"svc{s}{{region=r{l % 3},pod=pod-{l}}}");
        string url = $"/ingest?name={name}&from={from}&until={from + 10}&format=pprof&spyName=serverload&sampleRate=100";
        bool ok = false;
        Dictionary<string, double>? timing = null;
        double lateMs = _clock.Elapsed.TotalMilliseconds - sinceMs; // sent after its due time (the schedule's or this process's delay)
        try
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
            using HttpResponseMessage r = await http.PostAsync(url, content, CancellationToken.None);
            ok = r.IsSuccessStatusCode;
            if (r.Headers.TryGetValues("Server-Timing", out IEnumerable<string>? entries)) (timing = PhaseBreakdown.Parse(entries))["generator-late"] = lateMs;
            if (!ok) _failures.AddOrUpdate((int)r.StatusCode, 1, (_, c) => c + 1);
            else Interlocked.Add(ref _bytesSent, body.Length);
        }
        catch (HttpRequestException)
        {
            _failures.AddOrUpdate(-1, 1, (_, c) => c + 1);
        }
        catch (TaskCanceledException)
        {
            _failures.AddOrUpdate(-2, 1, (_, c) => c + 1);
        }
        double nowMs = _clock.Elapsed.TotalMilliseconds;
        _ingests.Enqueue((nowMs / 1000, nowMs - sinceMs, ok, timing));
    }

    private async Task QueryWorker(int index, CancellationToken stop, bool quiet = false)
    {
        using var http = Client(TimeSpan.FromSeconds(120));
        var random = new Random(Seeds.Of(options.Seed, index, 77));
        for (int n = 0; n < 10_000_000 && !stop.IsCancellationRequested; n++)
        {
            if (!await Render(http, n % 2 == 0 ? 1 : 24, random.Next(options.Services), _clock.Elapsed.TotalMilliseconds, stop, quiet)) return;
        }
    }

    /// <summary>--render-rate R: render k is sent at k / R s (1 h and 24 h alternating, a random service), each on a
    /// connection of its own, at most --max-in-flight at once; its latency counts from its due time, so a render that
    /// waited for a slot or behind a slow server counts that wait too (no coordinated omission).</summary>
    private async Task OpenLoopQueries(CancellationToken stop)
    {
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = options.MaxInFlight, PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
        {
            BaseAddress = new Uri(server.Url),
            Timeout = TimeSpan.FromSeconds(120),
        };
        using var slots = new SemaphoreSlim(options.MaxInFlight);
        var random = new Random(Seeds.Of(options.Seed, 78));
        var inFlight = new List<Task>();
        try
        {
            for (long n = 0; n < 10_000_000 && !stop.IsCancellationRequested; n++)
            {
                double dueMs = n / options.RenderRate * 1000;
                double wait = dueMs - _clock.Elapsed.TotalMilliseconds;
                if (wait > 0) await Task.Delay(TimeSpan.FromMilliseconds(wait), stop).ContinueWith(_ => { }, TaskScheduler.Default);
                if (stop.IsCancellationRequested) break;
                await slots.WaitAsync(stop).ContinueWith(_ => { }, TaskScheduler.Default);
                if (stop.IsCancellationRequested) break;
                int hours = n % 2 == 0 ? 1 : 24, service = random.Next(options.Services);
                inFlight.Add(Task.Run(async () =>
                {
                    try { await Render(http, hours, service, dueMs, stop, quiet: false); }
                    finally { slots.Release(); }
                }, CancellationToken.None));
                if (inFlight.Count > 4096) inFlight.RemoveAll(t => t.IsCompleted);
            }
        }
        finally
        {
            await Task.WhenAll(inFlight);
        }
    }

    /// <summary>One /render of the last <paramref name="hours"/> of simulated time for service <paramref name="service"/>;
    /// latency counted from <paramref name="sinceMs"/> (the clock's ms). False when stopped (nothing recorded).</summary>
    private async Task<bool> Render(HttpClient http, int hours, int service, double sinceMs, CancellationToken stop, bool quiet)
    {
        long until = Interlocked.Read(ref _simulatedNow);
        string query = Uri.EscapeDataString($"svc{service}.cpu{{}}");
        bool ok = false;
        Dictionary<string, double>? timing = null;
        try
        {
            // Headers first, then the body read through a pooled buffer and dropped: buffering each answer (≈ 100 KB, on the
            // Large Object Heap) gave the generator collections whose pauses counted in the latencies it measures.
            using HttpResponseMessage r = await http.GetAsync($"/render?query={query}&from={until - hours * 3600}&until={until}&format=json&maxNodes=1024", HttpCompletionOption.ResponseHeadersRead, stop);
            await using (Stream body = await r.Content.ReadAsStreamAsync(stop))
            {
                byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(16 << 10);
                try
                {
                    while (await body.ReadAsync(buffer, stop) > 0) { }
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                }
            }
            ok = r.IsSuccessStatusCode;
            if (r.Headers.TryGetValues("Server-Timing", out IEnumerable<string>? entries)) timing = PhaseBreakdown.Parse(entries);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return false;
        }
        catch (TaskCanceledException) when (quiet)
        {
            return false;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
        }
        double nowMs = _clock.Elapsed.TotalMilliseconds;
        _renders.Enqueue((nowMs / 1000, nowMs - sinceMs, hours, ok, timing));
        return true;
    }

    private HttpClient Client(TimeSpan timeout) =>
        new(new SocketsHttpHandler { MaxConnectionsPerServer = 1, PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
        {
            BaseAddress = new Uri(server.Url),
            Timeout = timeout,
        };

    private static void InterlockedMax(ref long target, long value)
    {
        long current;
        while ((current = Interlocked.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current) { }
    }

    /// <summary>The first line of /proc/loadavg (1, 5, 15 min).</summary>
    public static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "?"; }
    }
}

/// <summary>The storage gauges of the server's /metrics.</summary>
public sealed record Metrics(long Nodes = 0, long Trees = 0, long Series = 0, long NativeBytes = 0)
{
    public static async Task<Metrics?> Read(HttpClient http)
    {
        try
        {
            var samples = new Dictionary<string, double>();
            foreach (var (key, value) in Samples(await http.GetStringAsync("/metrics"))) samples.TryAdd(key, value);
            double Value(string name) => samples.GetValueOrDefault(name);
            return new Metrics((long)Value("profilearena_storage_nodes"), (long)Value("profilearena_storage_trees"),
                (long)Value("profilearena_storage_series"), (long)Value("profilearena_storage_native_bytes"));
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or FormatException)
        {
            return null;
        }
    }

    /// <summary>Mean ms per /render phase (the server's profilearena_query_phase_seconds histogram, sum / count),
    /// and "trees merged per render" (profilearena_query_trees_merged_total / renders timed).</summary>
    public static async Task<Dictionary<string, double>> RenderPhases(HttpClient http, Dictionary<string, double>? before)
    {
        Dictionary<string, double> phases = await Phases(http, "profilearena_query_phase_seconds_", "profilearena_query_trees_merged_total", "merge", "trees merged per render", before);
        // The storage's part of the merge phase (single node): wait for applied writes, collect, direct, cache extend /
        // rebuild / copy, uncached; prefixed "storage " in the report.
        foreach (var (key, value) in await Phases(http, "profilearena_query_storage_phase_seconds_", "profilearena_query_cache_trees_merged_total", "wait", "#unused", before))
        {
            if (!key.StartsWith('#')) phases["storage " + key] = value;
            else if (key.StartsWith("#sum ", StringComparison.Ordinal) || key.StartsWith("#count ", StringComparison.Ordinal)) phases[key] = value;
        }
        // The merge cache's work per render (Storage:MergeCacheBytes): groups served as cached, extended with new trees, rebuilt.
        foreach (string what in new[] { "hits", "extended", "rebuilt", "evicted" })
        {
            Dictionary<string, double> cache = await Phases(http, "profilearena_query_phase_seconds_", $"profilearena_merge_cache_{what}_total", "merge", $"cache {what} per render", before);
            foreach (var (key, value) in cache)
            {
                if (key.StartsWith("cache ", StringComparison.Ordinal) || key.StartsWith("#profilearena_merge_cache", StringComparison.Ordinal)) phases[key] = value;
            }
        }
        // Nodes of the cache entries merged into the renders' trees (what the copy phase copies), per render.
        const string copied = "profilearena_query_cache_nodes_total{kind=\"copy\"}";
        foreach (var (key, value) in await Phases(http, "profilearena_query_phase_seconds_", copied, "merge", "nodes copied per render", before))
        {
            if (key is "nodes copied per render" or "#" + copied) phases[key] = value;
        }
        return phases;
    }

    /// <summary>Of the ingest requests the server timed (profilearena_ingest_duration_seconds: from the handler's start
    /// to the durable write, body read and decode included; not Kestrel's parsing before it nor the answer's send), the
    /// share done within each histogram bound from 1 to 64 ms. Exact at the bounds, no interpolation.</summary>
    public static async Task<List<(double Ms, double Share)>> IngestWithin(HttpClient http)
    {
        var within = new List<(double Ms, double Share)>();
        try
        {
            const string bucket = "profilearena_ingest_duration_seconds_bucket{le=\"";
            double count = 0;
            var cumulative = new List<(double Ms, double N)>();
            foreach (var (key, value) in Samples(await http.GetStringAsync("/metrics")))
            {
                if (key == "profilearena_ingest_duration_seconds_count") count = value;
                else if (key.StartsWith(bucket, StringComparison.Ordinal))
                {
                    string le = key[bucket.Length..key.IndexOf('"', bucket.Length)];
                    if (double.TryParse(le, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds)) cumulative.Add((seconds * 1000, value));
                }
            }
            if (count > 0) within.AddRange(cumulative.Where(c => c.Ms is >= 0.99 and <= 64.1).Select(c => (c.Ms, c.N / count)));
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or FormatException)
        {
        }
        return within;
    }

    /// <summary>The samples of a Prometheus text exposition: each line's metric name with its labels, and its value
    /// (comments skipped). The one reader of /metrics here. A value that is not a number throws FormatException.</summary>
    private static IEnumerable<(string Key, double Value)> Samples(string text)
    {
        foreach (string line in text.Split('\n'))
        {
            int space = line.LastIndexOf(' ');
            if (line.StartsWith('#') || space < 0) continue;
            yield return (line[..space], double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Mean ms per ingest phase (read, decode, store), and per push: ms applying to memory, WAL fsyncs.</summary>
    public static async Task<Dictionary<string, double>> IngestPhases(HttpClient http)
    {
        Dictionary<string, double> phases = await Phases(http, "profilearena_ingest_phase_seconds_", "profilearena_storage_apply_seconds_total", "store", "apply ms per push", null);
        if (phases.TryGetValue("apply ms per push", out double apply)) phases["apply ms per push"] = apply * 1000;
        Dictionary<string, double> syncs = await Phases(http, "profilearena_ingest_phase_seconds_", "profilearena_storage_wal_syncs_total", "store", "WAL fsyncs per push", null);
        if (syncs.TryGetValue("WAL fsyncs per push", out double s)) phases["WAL fsyncs per push"] = s;
        return phases;
    }

    private static async Task<Dictionary<string, double>> Phases(HttpClient http, string prefix, string counterName, string perPhase, string perName, Dictionary<string, double>? before)
    {
        var result = new Dictionary<string, double>();
        try
        {
            var sums = new Dictionary<string, double>();
            var counts = new Dictionary<string, double>();
            double merged = 0;
            foreach (var (key, value) in Samples(await http.GetStringAsync("/metrics")))
            {
                if (key == counterName) merged = value;
                if (!key.StartsWith(prefix, StringComparison.Ordinal)) continue;
                int q = key.IndexOf("phase=\"", StringComparison.Ordinal);
                if (q < 0) continue;
                string phase = key[(q + 7)..key.IndexOf('"', q + 7)];
                if (key.StartsWith(prefix + "sum", StringComparison.Ordinal)) sums[phase] = value;
                else if (key.StartsWith(prefix + "count", StringComparison.Ordinal)) counts[phase] = value;
            }
            // Raw sums and counts are kept under "#sum …"/"#count …" so a later read can report only what came after.
            double Minus(string key, double value) => before != null && before.TryGetValue(key, out double b) ? value - b : value;
            foreach (var (phase, sum) in sums)
            {
                double n = Minus("#count " + phase, counts.GetValueOrDefault(phase));
                if (n > 0) result[phase] = Minus("#sum " + phase, sum) * 1000 / n;
            }
            double renders = Minus("#count " + perPhase, counts.GetValueOrDefault(perPhase));
            if (renders > 0) result[perName] = Minus("#" + counterName, merged) / renders;
            foreach (var (phase, sum) in sums) result["#sum " + phase] = sum;
            foreach (var (phase, n) in counts) result["#count " + phase] = n;
            result["#" + counterName] = merged;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or FormatException)
        {
        }
        return result;
    }
}

/// <summary>Latency percentiles in milliseconds.</summary>
public sealed record Percentiles(int Count, double P50, double P99, double P999, double Max)
{
    public static Percentiles Of(double[] ms) => new(ms.Length, At(ms, 0.5), At(ms, 0.99), At(ms, 0.999), ms.Length == 0 ? double.NaN : ms.Max());

    /// <summary>Nearest-rank percentile; NaN for no samples.</summary>
    public static double At(double[] ms, double q)
    {
        if (ms.Length == 0) return double.NaN;
        double[] sorted = [.. ms.Order()];
        int rank = (int)Math.Ceiling(q * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }
}

/// <summary>One row of the report over time.</summary>
public sealed class IntervalRow
{
    public double Seconds { get; init; }
    public long NodesStored { get; init; }
    public long NativeBytes { get; init; }
    public long RssBytes { get; init; }
    public long ManagedHeapBytes { get; init; }
    public double PushesPerSecond { get; init; }
    public double IngestP50 { get; init; }
    public double IngestP99 { get; init; }
    public double Render1hP99 { get; init; }
    public double Render24hP99 { get; init; }
    public int[] GcCountByGeneration { get; init; } = [];
    public double GcTotalPauseMs { get; init; }
    public double GcMaxPauseMsSoFar { get; init; }
}

/// <summary>One engine's figures.</summary>
public sealed class EngineRun
{
    public string Engine { get; init; } = "";
    public string? StopReason { get; init; }
    public string LoadAverageStart { get; init; } = "";
    public string LoadAverageEnd { get; init; } = "";
    public double IngestSeconds { get; init; }
    public long Pushes { get; init; }
    public long PushesAcknowledged { get; init; }
    public Dictionary<string, int> Failures { get; init; } = [];
    public double PushesPerSecond { get; init; }
    public double MegabytesPerSecond { get; init; }
    public Percentiles Ingest { get; init; } = Percentiles.Of([]);
    public Percentiles Render1h { get; init; } = Percentiles.Of([]);
    public Percentiles Render24h { get; init; } = Percentiles.Of([]);
    public long RenderFailures { get; init; }
    /// <summary>Server-side mean ms per /render phase (merge, truncate, export, send) and trees merged per render, from /metrics.</summary>
    public Dictionary<string, double> RenderPhasesMeanMs { get; init; } = [];
    /// <summary>Render 1 h under ingest, from each answer's Server-Timing: the mean phases of all renders and of the slowest 1 %.</summary>
    public PhaseBreakdown? Render1hBreakdown { get; init; }
    /// <summary>Ingest, from each answer's Server-Timing (read, decode, store) and the push's own lateness
    /// (generator-late: sent after its due time): the mean phases of all pushes and of the slowest 1 %.</summary>
    public PhaseBreakdown? IngestBreakdown { get; init; }
    /// <summary>Server-side mean ms per ingest phase (read, decode, store) and per push: apply ms, WAL fsyncs.</summary>
    public Dictionary<string, double> IngestPhasesMeanMs { get; init; } = [];
    /// <summary>Server side: the share of ingest requests the server finished within 1, 2, 4 … 64 ms (its own histogram).</summary>
    public List<string> IngestServerWithin { get; init; } = [];
    /// <summary>The load generator's own GCs during the run (their pauses delay its sends and stretch the latencies it times).</summary>
    public string LoadGeneratorGc { get; init; } = "";
    /// <summary>--quiet-render-seconds: renders alone on one connection after ingest stopped.</summary>
    public Percentiles QuietRender1h { get; init; } = Percentiles.Of([]);
    public Percentiles QuietRender24h { get; init; } = Percentiles.Of([]);
    /// <summary>Mean ms per phase of the quiet renders only.</summary>
    public Dictionary<string, double> QuietRenderPhasesMeanMs { get; init; } = [];
    public long NodesStored { get; init; }
    public long Trees { get; init; }
    public long Series { get; init; }
    public long NativeBytes { get; init; }
    public long RssBytes { get; init; }
    public long RssPeakBytes { get; init; }
    public long ManagedHeapBytes { get; init; }
    public long ManagedHeapPeakBytes { get; init; }
    public int[] GcCountByGeneration { get; init; } = [];
    public double GcTotalPauseMs { get; init; }
    /// <summary>The longest single suspension of the process for a GC (a background GC's pauses counted one by one).</summary>
    public double GcMaxPauseMs { get; init; }
    /// <summary>The GCs with the longest single suspensions: generation, reason, type and where the time went.</summary>
    public List<string> GcLongestPauses { get; init; } = [];
    /// <summary>With --allocation-ticks: bytes allocated on the large object heap by type (from allocation ticks).</summary>
    public List<string> GcLargeAllocations { get; init; } = [];
    /// <summary>With --allocation-ticks: bytes allocated on the small object heap by type (from allocation ticks, one per ≈ 100 KB).</summary>
    public List<string> GcSmallAllocations { get; init; } = [];
    public double GcPercentOfTime { get; init; }
    public long GcEventsLost { get; init; }
    /// <summary>GCs by generation, reason and type (why the runtime collected).</summary>
    public Dictionary<string, int> GcReasons { get; init; } = [];
    public long? LiveObjects { get; init; }
    public long? LiveBytes { get; init; }
    public List<string>? TopTypes { get; init; }
    /// <summary>The live types holding the most bytes (what a settled managed heap is made of).</summary>
    public List<string>? TopTypesByBytes { get; init; }
    /// <summary>The figures without the first <see cref="LoadOptions.WarmupSeconds"/> (null when the run was shorter or none was asked).</summary>
    public SteadyFigures? Steady { get; init; }
    public List<IntervalRow> Rows { get; init; } = [];
}

/// <summary>Latencies and GC over the ingest window after the warm-up: what the server does once its JIT, pools and
/// caches are warm (requests counted by when they finished; GCs by number, after the last one seen at the warm-up's end).</summary>
public sealed record SteadyFigures(int FromSeconds, Percentiles Ingest, Percentiles Render1h, Percentiles Render24h, int[] GcCountByGeneration,
    double GcPercentOfTime, double GcMaxPauseMs, string LongestPause)
{
    public static SteadyFigures Of(int fromSeconds, double ingestEnd, IEnumerable<(double At, double Ms, bool Ok)> ingests,
        IEnumerable<(double At, double Ms, int RangeHours, bool Ok)> renders, GcRecord[] gcs, GcTotals atWarm, GcTotals atEnd)
    {
        var steadyRenders = renders.Where(r => r.Ok && r.At >= fromSeconds && r.At <= ingestEnd).ToArray();
        GcRecord? longest = gcs.OrderByDescending(g => g.LongestSuspensionMs).FirstOrDefault();
        return new SteadyFigures(fromSeconds,
            Percentiles.Of([.. ingests.Where(i => i.Ok && i.At >= fromSeconds).Select(i => i.Ms)]),
            Percentiles.Of([.. steadyRenders.Where(r => r.RangeHours == 1).Select(r => r.Ms)]),
            Percentiles.Of([.. steadyRenders.Where(r => r.RangeHours == 24).Select(r => r.Ms)]),
            [.. Enumerable.Range(0, 3).Select(g => atEnd.CountByGeneration[g] - atWarm.CountByGeneration[g])],
            100 * (atEnd.TotalPauseMs - atWarm.TotalPauseMs) / Math.Max(1e-9, (ingestEnd - fromSeconds) * 1000),
            longest?.LongestSuspensionMs ?? 0,
            longest is null ? "-" : DescribePause(longest));
    }

    /// <summary>One GC's pause and where its time went (the report's "longest GC pauses").</summary>
    public static string DescribePause(GcRecord g) =>
        $"#{g.Number} gen{g.Generation} {g.Reason} {g.Type}: {g.LongestSuspensionMs:0.0} ms ({g.Suspensions} suspension(s), {g.PauseMs:0.0} ms in all, {g.SuspendingMs:0.0} ms stopping threads, GC {g.EndMs - g.StartMs:0.0} ms{(g.DescribeWork() is { Length: > 0 } work ? $" [{work}]" : "")}, {g.RestartingMs:0.0} ms restarting threads)";
}

/// <summary>The whole run: options, corpus, one entry per engine.</summary>
public sealed class LoadReport
{
    public string Date { get; init; } = "";
    public string Command { get; init; } = "";
    public LoadOptions Options { get; init; } = new();
    public List<string> Sources { get; init; } = [];
    public long CorpusBytes { get; init; }
    public long MeanStacksPerBody { get; init; }
    public List<EngineRun> Engines { get; init; } = [];

    public string ToJson() => JsonSerializer.Serialize(this, new JsonSerializerOptions
    {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    });
}

/// <summary>Where requests' time went, from the server's <c>Server-Timing</c> answers (a render's phases in ms: merge, and in
/// it the storage's wait, collect, direct, extend, rebuild, copy, uncached; truncate; export; a push's read, decode,
/// store), for all requests and for the slowest 1 % (latency at or above p99): which phase makes the tail.
/// "client − server" is the latency the server's top-level phases do not cover (queueing for a thread, the send, the
/// network, the generator's own delays).</summary>
public sealed record PhaseBreakdown(int Count, int TailCount, double P99Ms, Dictionary<string, double> MeanMs, Dictionary<string, double> TailMeanMs,
    Dictionary<string, double> PhaseP99Ms, int Waited, string? WaitPhase)
{
    /// <summary>The <c>name;dur=ms</c> entries of Server-Timing header values (other parameters ignored).</summary>
    public static Dictionary<string, double> Parse(IEnumerable<string> headerValues)
    {
        var phases = new Dictionary<string, double>();
        foreach (string value in headerValues)
        {
            foreach (string entry in value.Split(','))
            {
                string[] parts = entry.Split(';');
                string name = parts[0].Trim();
                foreach (string p in parts.Skip(1))
                {
                    string t = p.Trim();
                    if (t.StartsWith("dur=", StringComparison.Ordinal) && double.TryParse(t[4..], NumberStyles.Float, CultureInfo.InvariantCulture, out double ms))
                        phases[name] = phases.GetValueOrDefault(name) + ms;
                }
            }
        }
        return phases;
    }

    /// <summary>The breakdown of <paramref name="requests"/>; <paramref name="serverPhases"/> are the top-level phases
    /// (their sum is the server's part), <paramref name="waitPhase"/> a phase whose requests are counted when it is above 0.</summary>
    public static PhaseBreakdown? Of((double Ms, Dictionary<string, double>? Timing)[] requests, string[] serverPhases, string? waitPhase)
    {
        var timed = requests.Where(r => r.Timing != null).ToArray();
        if (timed.Length == 0) return null;
        double p99 = Percentiles.At([.. timed.Select(r => r.Ms)], 0.99);
        var tail = timed.Where(r => r.Ms >= p99).ToArray();
        string[] names = [.. timed.SelectMany(r => r.Timing!.Keys).Distinct()];
        Dictionary<string, double> Mean((double Ms, Dictionary<string, double>? Timing)[] set)
        {
            var mean = names.ToDictionary(n => n, n => set.Average(r => r.Timing!.GetValueOrDefault(n)));
            mean["client − server"] = set.Average(r => r.Ms - r.Timing!.Where(kv => serverPhases.Contains(kv.Key)).Sum(kv => kv.Value));
            mean["client"] = set.Average(r => r.Ms);
            return mean;
        }
        return new PhaseBreakdown(timed.Length, tail.Length, p99, Mean(timed), Mean(tail),
            names.ToDictionary(n => n, n => Percentiles.At([.. timed.Select(r => r.Timing!.GetValueOrDefault(n))], 0.99)),
            waitPhase is null ? 0 : timed.Count(r => r.Timing!.GetValueOrDefault(waitPhase) > 0), waitPhase);
    }

    public override string ToString() =>
        $"all {Count}{(WaitPhase is null ? "" : $" ({Waited} with {WaitPhase})")}: {Format(MeanMs)}; slowest {TailCount} (≥ p99 {P99Ms:0} ms): {Format(TailMeanMs)}; p99 per phase: {Format(PhaseP99Ms)}";

    private static string Format(Dictionary<string, double> phases) =>
        string.Join(", ", phases.Where(kv => kv.Value >= 0.05 || kv.Key is "client").Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:0.0}")));
}
