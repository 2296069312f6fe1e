using System.Diagnostics;
using Microsoft.Extensions.Options;
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
            try
            {
                ServerOptions limits = options.Value;
                IngestParameters parameters = IngestParameters.Parse(context.Request.Query, limits, clock.GetUtcNow());
                byte[] body = await ApiHandler.ReadBody(context.Request, limits.MaxRequestBodyBytes, context.RequestAborted);
                metrics.IngestBytes.Inc(body.Length);
                if (context.Request.Headers.ContentEncoding.ToString() is { Length: > 0 } encoding)
                {
                    if (!encoding.Equals("gzip", StringComparison.OrdinalIgnoreCase))
                        throw new RequestException(StatusCodes.Status415UnsupportedMediaType, $"Content-Encoding '{encoding}' is not supported (only gzip)");
                    body = BoundedGzip.Decompress(body, limits.MaxDecompressedBytes, "body (Content-Encoding: gzip)");
                }
                string? contentType = context.Request.ContentType;
                format = IngestDecoder.ChooseFormat(parameters.Format, contentType, body).ToString().ToLowerInvariant();
                List<IngestProfile> profiles = new IngestDecoder(limits).Decode(tenant, parameters, contentType, body);
                if (profiles.Count > 0)
                    await storage.IngestAsync(profiles, context.RequestAborted);
                metrics.IngestProfiles.Inc(profiles.Count);
                metrics.IngestStacks.Inc(profiles.Sum(p => (double)p.Stacks.Count));
                context.Response.StatusCode = StatusCodes.Status200OK;
                stored = true;
            }
            finally
            {
                metrics.IngestRequests.WithLabels(format, stored ? "stored" : "rejected").Inc();
                metrics.IngestDuration.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
            }
        });
}
