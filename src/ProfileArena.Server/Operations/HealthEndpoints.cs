using ProfileArena.Server.Storage;

namespace ProfileArena.Server.Operations;

/// <summary><c>/healthz</c>: the process answers. <c>/readyz</c>: storage has replayed its log and
/// serves (503 before). Neither needs credentials.</summary>
public static class HealthEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/readyz", (IProfileStorage storage) => storage.IsReady
            ? Results.Text("ready\n")
            : Results.Text("not ready: storage is replaying its write-ahead log\n", statusCode: StatusCodes.Status503ServiceUnavailable));
    }
}
