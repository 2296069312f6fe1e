using Orleans.Runtime;

namespace ProfileArena.Server.Cluster;

/// <summary>A silo-wide background loop (the load table's refresh, the rebalancer): started when the silo becomes
/// active, cancelled and awaited when it leaves the active stage, so it never runs against a stopping silo.</summary>
internal static class SiloBackgroundLoop
{
    public static void Subscribe(ISiloLifecycle lifecycle, string name, Func<CancellationToken, Task> loop)
    {
        CancellationTokenSource? stop = null;
        Task running = Task.CompletedTask;
        lifecycle.Subscribe(name, ServiceLifecycleStage.Active,
            _ =>
            {
                stop = new CancellationTokenSource();
                running = loop(stop.Token);
                return Task.CompletedTask;
            },
            async _ =>
            {
                if (stop is null) return;
                await stop.CancelAsync();
                await running;
                stop.Dispose();
            });
    }
}
