using ProfileArena.Server.Hosting;
using ProfileArena.Server.Storage;

namespace ProfileArena.Server.Operations;

/// <summary><c>/healthz</c>: the process answers. <c>/readyz</c>: storage has replayed its log and serves, and the
/// warm-up (<c>Server:WarmupSeconds</c>) has ended (503 before, saying which). Neither needs credentials.</summary>
public static class HealthEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/readyz", (IProfileStorage storage, StartupWarmup warmup) =>
            !storage.IsReady ? Results.Text("not ready: storage is replaying its write-ahead log\n", statusCode: StatusCodes.Status503ServiceUnavailable)
            : !warmup.Done.IsCompleted ? Results.Text("not ready: warming up (Server:WarmupSeconds)\n", statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Text("ready\n"));
    }
}
