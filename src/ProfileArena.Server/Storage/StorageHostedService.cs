using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ProfileArena.Server.Storage;

/// <summary>
/// Runs the storage's lifecycle in the host: replay at start (in the background, so /readyz can answer
/// "not ready" meanwhile), then retention every <see cref="StorageOptions.RetentionIntervalSeconds"/> and
/// snapshots every <see cref="StorageOptions.SnapshotIntervalSeconds"/>; on stop (SIGTERM, Ctrl-C) it lets
/// queued writes finish and snapshots every shard. A replay failure (corrupt snapshot or WAL) is logged as
/// critical with the file and offset, sets exit code 1 and stops the host: nothing is served from a store
/// that skipped data.
/// </summary>
public sealed class StorageHostedService(ProfileStorage storage, IHostApplicationLifetime lifetime, TimeProvider time, ILogger<StorageHostedService> log) : BackgroundService
{
    /// <summary>The replay failure that stopped the host, if any.</summary>
    public Exception? StartupFailure { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await storage.OpenAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return;
        }
        catch (Exception e)
        {
            StartupFailure = e;
            log.LogCritical(e, "Storage cannot start: {Reason}", e.Message);
            Environment.ExitCode = 1;
            lifetime.StopApplication();
            return;
        }
        StorageOptions options = storage.Options;
        long lastSnapshot = time.GetTimestamp();
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromSeconds(options.RetentionIntervalSeconds), time, stoppingToken).ConfigureAwait(false);
                await Run("retention", storage.RemoveExpiredAsync).ConfigureAwait(false);
                // Retention freed whole trees: hand the C heap's free pages back (free() alone keeps most of them).
                TimeSpan trim = Operations.NativeHeap.Trim();
                if (trim > TimeSpan.FromMilliseconds(100)) log.LogInformation("malloc_trim after retention took {Ms:F0} ms", trim.TotalMilliseconds);
                if (options.SnapshotIntervalSeconds > 0 && time.GetElapsedTime(lastSnapshot).TotalSeconds >= options.SnapshotIntervalSeconds)
                {
                    await Run("snapshot", storage.SnapshotAsync).ConfigureAwait(false);
                    lastSnapshot = time.GetTimestamp();
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task Run(string what, Func<Task> action)
    {
        try
        {
            await action().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or StorageUnavailableException)
        {
            log.LogError(e, "Periodic {What} failed; the WAL keeps every record", what);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (StartupFailure != null || !storage.IsReady) return;
        log.LogInformation("Storage: finishing queued writes and snapshotting every shard");
        await storage.StopAsync(snapshot: true).ConfigureAwait(false);
    }
}
