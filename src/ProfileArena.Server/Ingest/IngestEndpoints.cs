using System.Diagnostics;
using Microsoft.Extensions.Options;
using ProfileArena.Server.Buffers;
using ProfileArena.Server.Hosting;
using ProfileArena.Server.Http;
using ProfileArena.Server.Operations;
using ProfileArena.Server.Storage;

namespace ProfileArena.Server.Ingest;

/// <summary><c>POST /ingest</c> and <c>POST /pyroscope/ingest</c>: decode the whole request, then one
/// durable <see cref="IProfileStorage.IngestAsync"/> (all or nothing); 200 only once it is durable.</summary>
public static class IngestEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/ingest", Handle);
        app.MapPost("/pyroscope/ingest", Handle);
    }

    private static Task Handle(HttpContext context, ApiHandler api, IProfileStorage storage, IOptions<ServerOptions> options, ServerMetrics metrics, TimeProvider clock) =>
        api.Run(context, async tenant =>
        {
            var started = Stopwatch.GetTimestamp();
            string format = "unknown";
            bool stored = false;
            List<IngestProfile> profiles = [];
            try
            {
                ServerOptions limits = options.Value;
                IngestParameters parameters = IngestParameters.Parse(context.Request.Query, limits, clock.GetUtcNow());
                using PooledBuffer received = await ApiHandler.ReadBody(context.Request, limits.MaxRequestBodyBytes, context.RequestAborted);
                metrics.IngestBytes.Inc(received.Length);
                long phase = Observe("read", started);
                PooledBuffer? inflated = null;
                try
                {
                    ReadOnlyMemory<byte> body = received.WrittenMemory;
                    if (context.Request.Headers.ContentEncoding.ToString() is { Length: > 0 } encoding)
                    {
                        if (!encoding.Equals("gzip", StringComparison.OrdinalIgnoreCase))
                            throw new RequestException(StatusCodes.Status415UnsupportedMediaType, $"Content-Encoding '{encoding}' is not supported (only gzip)");
                        inflated = BoundedGzip.Decompress(body, limits.MaxDecompressedBytes, "body (Content-Encoding: gzip)");
                        body = inflated.WrittenMemory;
                    }
                    string? contentType = context.Request.ContentType;
                    format = IngestDecoder.ChooseFormat(parameters.Format, contentType, body.Span).ToString().ToLowerInvariant();
                    profiles = new IngestDecoder(limits).Decode(tenant, parameters, contentType, body);
                }
                finally
                {
                    inflated?.Dispose();
                }
                phase = Observe("decode", phase);
                if (profiles.Count > 0)
                {
                    try
                    {
                        await storage.IngestAsync(profiles, context.RequestAborted);
                        Observe("store", phase);
                    }
                    catch (Exception e) when (e is OverflowException or ArgumentException)
                    {
                        // Storage refuses client values it cannot hold (a bucket total past 2^64 − 1, times
                        // outside its range) before anything is logged: the request's fault, nothing stored.
                        throw new RequestException(StatusCodes.Status400BadRequest, $"profile refused, nothing was stored: {e.Message}");
                    }
                }
                metrics.IngestProfiles.Inc(profiles.Count);
                metrics.IngestStacks.Inc(profiles.Sum(p => (double)p.Stacks.Count));
                context.Response.StatusCode = StatusCodes.Status200OK;
                stored = true;
            }
            finally
            {
                // The request owns its batches' pooled arrays; storage holds no reference once IngestAsync
                // completed (a shard keeps its own copy of a prepared part).
                foreach (IngestProfile p in profiles) p.Stacks.Dispose();
                metrics.IngestRequests.WithLabels(format, stored ? "stored" : "rejected").Inc();
                metrics.IngestDuration.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
            }

            // A phase into the metrics and the answer's Server-Timing (a load client reads each push's breakdown).
            long Observe(string name, long since) => ServerTiming.Phase(metrics.IngestPhase.WithLabels(name), context.Response, name, since);
        });
}
