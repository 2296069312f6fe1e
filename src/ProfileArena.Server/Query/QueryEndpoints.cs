using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Options;
using ProfileArena.Formats;
using ProfileArena.Server.Buffers;
using ProfileArena.Server.Hosting;
using ProfileArena.Server.Http;
using ProfileArena.Server.Ingest;
using ProfileArena.Server.Operations;
using ProfileArena.Server.Storage;

namespace ProfileArena.Server.Query;

/// <summary>
/// What pyroscope's UI and tools read: <c>/render</c>, <c>/render-diff</c>, <c>/label-names</c>,
/// <c>/label-values</c> (each also under <c>/pyroscope/</c>), and <c>/api/top</c> (top functions).
/// Every query merges all matching series of the caller's tenant into a temporary
/// <see cref="TreeStore"/> of its own, capped by <c>Server:MaxQueryNodes</c>/<c>MaxQueryNativeBytes</c>.
/// </summary>
public static class QueryEndpoints
{
    /// <summary>Nodes kept by <c>/render</c> when <c>maxNodes</c> is not given (pyroscope's default).</summary>
    public const int DefaultMaxNodes = 8192;

    public static void Map(IEndpointRouteBuilder app)
    {
        foreach (string prefix in new[] { "", "/pyroscope" })
        {
            app.MapGet(prefix + "/render", Render);
            app.MapGet(prefix + "/render-diff", RenderDiff);
            app.MapGet(prefix + "/label-names", LabelNames);
            app.MapGet(prefix + "/label-values", LabelValues);
        }
        app.MapGet("/api/top", Top);
        app.MapGet("/api/pprof", Pprof);
    }

    /// <summary>The parts of a query that every endpoint reads the same way.</summary>
    internal sealed class Services(IProfileStorage storage, IOptions<ServerOptions> options, ServerMetrics metrics, TimeProvider clock) : IDisposable
    {
        private readonly QueryLimiter _limiter = new(options.Value.MaxConcurrentQueries);
        private readonly QueryThreads? _threads = options.Value.QueryThreads > 0 ? new QueryThreads(options.Value.QueryThreads, options.Value.QueryThreadNice) : null;

        public void Dispose() => _threads?.Dispose();

        public IProfileStorage Storage => storage;
        public ServerOptions Limits => options.Value;
        public ServerMetrics Metrics => metrics;
        public DateTimeOffset Now => clock.GetUtcNow();

        /// <summary>Parses query/from/until under the given parameter names; from defaults to now-1h, until to now.</summary>
        public (ParsedSelector Selector, long From, long Until) Range(IQueryCollection q, string queryKey, string? aliasKey, string fromKey, string untilKey)
        {
            string? text = IngestParameters.Single(q, queryKey) ?? (aliasKey is null ? null : IngestParameters.Single(q, aliasKey));
            ParsedSelector selector = SelectorParser.Parse(queryKey, text, requireName: true, Limits.MaxSelectorLength);
            DateTimeOffset now = Now;
            long until = TimeParameter.ParseOrDefault(untilKey, IngestParameters.Single(q, untilKey), now, now.ToUnixTimeSeconds());
            long from = TimeParameter.ParseOrDefault(fromKey, IngestParameters.Single(q, fromKey), now, now.ToUnixTimeSeconds() - 3600);
            if (until < from) throw RequestException.BadRequest($"{untilKey} ({until}) is before {fromKey} ({from})");
            // storage reads [from, until): an until given in whole seconds includes its own second.
            return (selector, from, until == long.MaxValue ? until : until + 1);
        }

        /// <summary>A temporary store for one query's merge.</summary>
        public TreeStore NewQueryStore() => QueryEndpoints.NewQueryStore(Limits);

        /// <summary>Merges the selector's series into <paramref name="tree"/> (given <paramref name="maxNodes"/> &gt; 0, storage
        /// may truncate the sum as it takes it: <see cref="QueryResult.Truncated"/>); <c>aborted</c> is the request's
        /// <c>RequestAborted</c>: a client that goes away cancels the shards' work (a cluster).</summary>
        public async Task<QueryResult> Merge(string tenant, ParsedSelector selector, long from, long until, ProfileTree tree, CancellationToken aborted, long maxNodes = 0, HttpContext? context = null)
        {
            long queued = Stopwatch.GetTimestamp();
            using QueryLimiter.Turn turn = await _limiter.EnterAsync(aborted);
            if (_limiter.Limits) Phase("queue", queued, context);
            try
            {
                if (_threads is null) return await Query();
                long handed = Stopwatch.GetTimestamp();
                return await _threads.RunAsync(() => { Phase("handoff", handed, context); return Query(); }, aborted);
            }
            catch (StoreLimitExceededException e)
            {
                throw new RequestException(StatusCodes.Status413PayloadTooLarge,
                    $"the query's merged profile is larger than the server's query cap (Server:MaxQueryNodes {Limits.MaxQueryNodes}, Server:MaxQueryNativeBytes {Limits.MaxQueryNativeBytes}); narrow the query or time range: {e.Message}");
            }

            Task<QueryResult> Query() => maxNodes > 0
                ? storage.QueryTruncatedAsync(tenant, selector.ToSeriesSelector(), from, until, tree, maxNodes, aborted).AsTask()
                : storage.QueryAsync(tenant, selector.ToSeriesSelector(), from, until, tree, cancellationToken: aborted).AsTask();
        }

        /// <summary>Records the time since <paramref name="started"/> as /render phase <paramref name="phase"/> (and, given
        /// the request, as a <c>Server-Timing</c> entry of its answer: a load client reads each render's breakdown); returns now.</summary>
        public long Phase(string phase, long started, HttpContext? context = null) =>
            ServerTiming.Phase(metrics.QueryPhase.WithLabels(phase), context?.Response, phase, started);

        /// <summary>Records where the storage's part of a /render went (<see cref="QueryTiming"/>; every phase each
        /// render, zeros included, so a phase's mean is per render) and answers it as <c>Server-Timing</c> entries.</summary>
        public void StoragePhases(QueryTiming timing, HttpContext context)
        {
            var entries = new List<string>();
            foreach (var (phase, ms) in timing.Phases())
            {
                metrics.QueryStoragePhase.WithLabels(phase).Observe(ms / 1000);
                entries.Add(ServerTiming.Entry("storage-" + phase, ms));
            }
            metrics.QueryCacheTrees.WithLabels("extend").Inc(timing.ExtendTrees);
            metrics.QueryCacheTrees.WithLabels("rebuild").Inc(timing.RebuildTrees);
            metrics.QueryCacheNodes.WithLabels("extend").Inc(timing.ExtendNodes);
            metrics.QueryCacheNodes.WithLabels("rebuild").Inc(timing.RebuildNodes);
            metrics.QueryCacheNodes.WithLabels("copy").Inc(timing.CopyNodes);
            entries.Add($"cache;desc=\"hits {timing.Hits}, extended {timing.Extended} ({timing.ExtendTrees} trees, {timing.ExtendNodes} nodes), rebuilt {timing.Rebuilt} ({timing.RebuildTrees} trees, {timing.RebuildNodes} nodes), copied {timing.CopyNodes} nodes\"");
            context.Response.Headers.Append("Server-Timing", string.Join(", ", entries));
        }

        public async Task Timed(HttpContext context, string endpoint, Func<Task> body)
        {
            long started = Stopwatch.GetTimestamp();
            try
            {
                await body();
            }
            finally
            {
                metrics.QueryRequests.WithLabels(endpoint, context.Response.StatusCode.ToString(CultureInfo.InvariantCulture)).Inc();
                metrics.QueryDuration.WithLabels(endpoint).Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
            }
        }
    }

    internal static int MaxNodes(IQueryCollection q)
    {
        string? text = IngestParameters.Single(q, "maxNodes") ?? IngestParameters.Single(q, "max-nodes");
        if (string.IsNullOrEmpty(text)) return DefaultMaxNodes;
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n > 10_000_000)
            throw RequestException.BadRequest($"maxNodes: '{TimeParameter.Excerpt(text)}' is not a whole number in [0, 10000000]");
        return n == 0 ? DefaultMaxNodes : n;
    }

    /// <summary>A query's temporary store, within the server's query caps (<c>Server:MaxQueryNodes</c>, <c>MaxQueryNativeBytes</c>).</summary>
    internal static TreeStore NewQueryStore(ServerOptions limits) => new(new TreeStoreOptions { MaxNodes = limits.MaxQueryNodes, MaxNativeBytes = limits.MaxQueryNativeBytes });

    /// <summary>Folds the merged tree to <paramref name="maxNodes"/> in place (a DFS that skips whole subtrees under the
    /// cut), so the export walks only the kept nodes, and returns the export's maxNodes: <see cref="NoCut"/> (the export
    /// then gives the same JSON as a cut while walking: the same cut, "other" folded the same way; tested). A sum the
    /// storage truncated is not cut again (a truncated tree may hold more than maxNodes nodes: ties, `other`). With no
    /// room beside the merged tree for the folded copy, the export cuts as it walks.</summary>
    internal static int Fold(ProfileTree tree, QueryResult result, int maxNodes)
    {
        try
        {
            if (!result.Truncated && tree.NodeCount - 1 > maxNodes) tree.Truncate(maxNodes);
            return NoCut;
        }
        catch (StoreLimitExceededException)
        {
            return maxNodes;
        }
    }

    /// <summary>/render's flamebearer export settings: the query's name, metadata and timeline, the export's maxNodes.</summary>
    internal static FlamebearerOptions Options(string name, QueryResult result, int maxNodes) => new()
    {
        MaxNodes = maxNodes,
        Name = name,
        Units = result.Metadata.Units,
        SampleRate = result.Metadata.SampleRate,
        SpyName = result.Metadata.SpyName,
        WriteTimeline = true,
        Timeline = new FlamebearerTimeline(result.Timeline.StartTime, result.Timeline.DurationDelta, result.Timeline.Samples),
    };

    private static async Task Send(HttpContext context, string contentType, Action<Stream> write, Services? timed = null, long started = 0)
    {
        // Built whole before the status goes out (a failed export still answers with its own status), in a pooled
        // buffer: see PooledBufferStream.
        using var buffer = new PooledBuffer(64 << 10);
        using (var stream = new PooledBufferStream(buffer)) write(stream);
        if (timed != null) started = timed.Phase("export", started, context);
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = contentType;
        context.Response.ContentLength = buffer.Length;
        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
        timed?.Phase("send", started);
    }

    /// <summary><c>GET /render?query=app.cpu{…}&amp;from=now-1h&amp;until=now&amp;maxNodes=N&amp;format=json|collapsed</c>.</summary>
    private static Task Render(HttpContext context, ApiHandler api, Services s) => api.Run(context, tenant => s.Timed(context, "render", async () =>
    {
        IQueryCollection q = context.Request.Query;
        var (selector, from, until) = s.Range(q, "query", "name", "from", "until");
        int maxNodes = MaxNodes(q);
        string format = IngestParameters.Single(q, "format") ?? "json";
        if (format is not ("json" or "collapsed" or "folded"))
            throw RequestException.BadRequest($"format: '{TimeParameter.Excerpt(format)}' is not supported (json, collapsed; pprof: GET /api/pprof)");
        using TreeStore store = s.NewQueryStore();
        ProfileTree tree = store.CreateTree();
        long started = Stopwatch.GetTimestamp();
        // A flame graph keeps maxNodes nodes: storage may hand over the sum already truncated (the merge cache sums its
        // entries' kept nodes without copying them); folded text keeps every node (0: no cut).
        QueryResult result = await s.Merge(tenant, selector, from, until, tree, context.RequestAborted, format == "json" ? maxNodes : 0, context);
        started = s.Phase("merge", started, context);
        if (result.Timing != null) s.StoragePhases(result.Timing, context);
        s.Metrics.QueryTreesMerged.Inc(result.TreesMerged);
        if (format == "json")
        {
            int cut = Fold(tree, result, maxNodes);
            started = s.Phase("truncate", started, context);
            await Send(context, "application/json", o => FlamebearerFormat.Export(tree, o, Options(selector.Name!, result, cut)), s, started);
        }
        else
        {
            await Send(context, "text/plain; charset=utf-8", o => FoldedFormat.Export(tree, o), s, started);
        }
    }));

    /// <summary>maxNodes for an export of a tree already truncated: no second cut.</summary>
    private const int NoCut = 0;

    /// <summary><c>GET /render-diff?leftQuery=…&amp;leftFrom=…&amp;leftUntil=…&amp;rightQuery=…&amp;rightFrom=…&amp;rightUntil=…</c>: format "double".</summary>
    private static Task RenderDiff(HttpContext context, ApiHandler api, Services s) => api.Run(context, tenant => s.Timed(context, "render-diff", async () =>
    {
        IQueryCollection q = context.Request.Query;
        var (leftSelector, leftFrom, leftUntil) = s.Range(q, "leftQuery", null, "leftFrom", "leftUntil");
        var (rightSelector, rightFrom, rightUntil) = s.Range(q, "rightQuery", null, "rightFrom", "rightUntil");
        int maxNodes = MaxNodes(q);
        using TreeStore store = s.NewQueryStore();
        ProfileTree left = store.CreateTree(), right = store.CreateTree();
        QueryResult leftResult = await s.Merge(tenant, leftSelector, leftFrom, leftUntil, left, context.RequestAborted);
        QueryResult rightResult = await s.Merge(tenant, rightSelector, rightFrom, rightUntil, right, context.RequestAborted);
        QueryResult shown = leftResult.Series > 0 ? leftResult : rightResult;
        await Send(context, "application/json", o => FlamebearerFormat.ExportDiff(left, right, o, new FlamebearerOptions
        {
            MaxNodes = maxNodes,
            Name = leftSelector.Name!,
            Units = shown.Metadata.Units,
            SampleRate = shown.Metadata.SampleRate,
            SpyName = shown.Metadata.SpyName,
        }));
    }));

    /// <summary>The tenant's series in the optional range, filtered by an optional <c>query</c> (which may omit the name).</summary>
    private static async Task<IEnumerable<SeriesKey>> FilteredSeries(HttpContext context, Services s, string tenant)
    {
        IQueryCollection q = context.Request.Query;
        DateTimeOffset now = s.Now;
        long from = TimeParameter.ParseOrDefault("from", IngestParameters.Single(q, "from"), now, 0);
        long until = TimeParameter.ParseOrDefault("until", IngestParameters.Single(q, "until"), now, TimeParameter.MaxSeconds);
        if (until < from) throw RequestException.BadRequest($"until ({until}) is before from ({from})");
        string? text = IngestParameters.Single(q, "query");
        ParsedSelector? filter = string.IsNullOrWhiteSpace(text) ? null : SelectorParser.Parse("query", text, requireName: false, s.Limits.MaxSelectorLength);
        IReadOnlyList<SeriesKey> series = await s.Storage.SeriesAsync(tenant, filter?.Name is null ? null : filter.ToSeriesSelector(), from, until + 1);
        return filter is null ? series : series.Where(filter.Matches);
    }

    /// <summary><c>GET /label-names[?query=…&amp;from=…&amp;until=…]</c>: a JSON array, <c>__name__</c> included.</summary>
    private static Task LabelNames(HttpContext context, ApiHandler api, Services s) => api.Run(context, tenant => s.Timed(context, "label-names", async () =>
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (SeriesKey key in await FilteredSeries(context, s, tenant))
        {
            names.Add("__name__");
            foreach (Label l in key.Labels) names.Add(l.Name);
        }
        await context.Response.WriteAsJsonAsync(names, context.RequestAborted);
    }));

    /// <summary><c>GET /label-values?label=NAME[&amp;query=…&amp;from=…&amp;until=…]</c>: a JSON array; <c>label=__name__</c> lists the series names.</summary>
    private static Task LabelValues(HttpContext context, ApiHandler api, Services s) => api.Run(context, tenant => s.Timed(context, "label-values", async () =>
    {
        string? label = IngestParameters.Single(context.Request.Query, "label");
        if (string.IsNullOrEmpty(label)) throw RequestException.BadRequest("label: is required (e.g. label=__name__)");
        var values = new SortedSet<string>(StringComparer.Ordinal);
        foreach (SeriesKey key in await FilteredSeries(context, s, tenant))
        {
            if (key.LabelValue(label) is string v) values.Add(v);
        }
        await context.Response.WriteAsJsonAsync(values, context.RequestAborted);
    }));

    /// <summary><c>GET /api/top?query=…&amp;from=…&amp;until=…&amp;n=20&amp;by=self|total</c>: the top functions (frames, not stacks).</summary>
    private static Task Top(HttpContext context, ApiHandler api, Services s) => api.Run(context, tenant => s.Timed(context, "top", async () =>
    {
        IQueryCollection q = context.Request.Query;
        var (selector, from, until) = s.Range(q, "query", "name", "from", "until");
        string? nText = IngestParameters.Single(q, "n");
        int n = 20;
        if (!string.IsNullOrEmpty(nText) && (!int.TryParse(nText, NumberStyles.None, CultureInfo.InvariantCulture, out n) || n < 1 || n > 100_000))
            throw RequestException.BadRequest($"n: '{TimeParameter.Excerpt(nText)}' is not a whole number in [1, 100000]");
        string by = IngestParameters.Single(q, "by") ?? "self";
        TopBy order = by switch
        {
            "self" => TopBy.Self,
            "total" => TopBy.Total,
            _ => throw RequestException.BadRequest($"by: '{TimeParameter.Excerpt(by)}' is neither 'self' nor 'total'"),
        };
        using TreeStore store = s.NewQueryStore();
        ProfileTree tree = store.CreateTree();
        QueryResult result = await s.Merge(tenant, selector, from, until, tree, context.RequestAborted);
        List<FunctionTotal> top = FunctionTotals.Top(tree, n, order);
        await context.Response.WriteAsJsonAsync(new TopReply(selector.Name!, by, result.Metadata.Units, tree.Total, result.Series,
            [.. top.Select(f => new TopFunction(f.Name, f.Self, f.Total))]), context.RequestAborted);
    }));

    /// <summary><c>GET /api/pprof?query=…&amp;from=…&amp;until=…</c>: the merged query as a gzipped
    /// profile.proto with one sample type (the series type and its unit), for <c>go tool pprof URL</c>.</summary>
    private static Task Pprof(HttpContext context, ApiHandler api, Services s) => api.Run(context, tenant => s.Timed(context, "pprof", async () =>
    {
        var (selector, from, until) = s.Range(context.Request.Query, "query", "name", "from", "until");
        using TreeStore store = s.NewQueryStore();
        ProfileTree tree = store.CreateTree();
        QueryResult result = await s.Merge(tenant, selector, from, until, tree, context.RequestAborted);
        string name = selector.Name!;
        string type = name[(name.LastIndexOf('.') + 1)..];
        string unit = result.Metadata.Units == "samples" ? "count" : result.Metadata.Units;
        context.Response.Headers.ContentDisposition = $"attachment; filename=\"{string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_'))}.pb.gz\"";
        await Send(context, "application/octet-stream", o => PprofFormat.Export(tree, o, new PprofExportOptions
        {
            SampleType = type,
            SampleUnit = unit,
            // Nanoseconds fit a long until 2262; later times are left out.
            TimeNanos = from < long.MaxValue / 1_000_000_000 ? from * 1_000_000_000 : 0,
            DurationNanos = until - from < long.MaxValue / 1_000_000_000 ? Math.Max(0, until - from) * 1_000_000_000 : 0,
        }));
    }));

    /// <summary>The reply of <c>/api/top</c>.</summary>
    public sealed record TopReply(string Name, string By, string Units, ulong Total, int Series, TopFunction[] Functions);

    /// <summary>One function of <see cref="TopReply"/>.</summary>
    public sealed record TopFunction(string Name, ulong Self, ulong Total);
}
