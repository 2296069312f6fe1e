using Orleans.Concurrency;
using Orleans.Runtime.Services;
using Orleans.Services;

namespace ProfileArena.Server.Cluster;

/// <summary>A silo's storage figures as it reports them: the bytes its active shards count against its budget
/// (<c>Shard.BudgetBytes</c> summed: native bytes of the arena stores, which Orleans' own statistics never see),
/// how many shards it holds, and where its budget stops admitting writes (0: no budget).</summary>
[GenerateSerializer, Immutable]
internal sealed record SiloShardLoad([property: Id(0)] long BudgetBytes, [property: Id(1)] int Shards, [property: Id(2)] long AdmissionLimit);

/// <summary>One per silo (an Orleans grain service: a system target every silo runs, addressed by silo): answers
/// this silo's <see cref="SiloShardLoad"/> to the other silos' <see cref="ShardLoadTable"/>.</summary>
[Alias("ProfileArena.IShardLoadService")]
internal interface IShardLoadService : IGrainService
{
    [Alias("Report")]
    Task<SiloShardLoad> Report();
}

internal sealed class ShardLoadService(GrainId grainId, Silo silo, ILoggerFactory logs, LocalShards local)
    : GrainService(grainId, silo, logs), IShardLoadService
{
    public Task<SiloShardLoad> Report() => Task.FromResult(local.Load());
}

/// <summary>Reaches the <see cref="IShardLoadService"/> of a given silo.</summary>
internal sealed class ShardLoadClient(IServiceProvider services) : GrainServiceClient<IShardLoadService>(services)
{
    public IShardLoadService On(SiloAddress silo) => GetGrainService(silo);
}

/// <summary>
/// Every silo's storage bytes as this silo last heard them: each <see cref="ProfileClusterOptions.LoadRefreshSeconds"/>
/// it asks every active silo (membership's view) for its <see cref="SiloShardLoad"/>; its own figure is read live.
/// The shard placement (<see cref="ShardBytesPlacementDirector"/>) and the rebalancer (<see cref="ShardRebalancer"/>)
/// read it. Orleans' load publisher is not used: its figures are the process's managed memory, CPU and activation
/// counts, and its table is internal to Orleans.
/// <para>A figure is fresh for three refresh periods after its request was sent; an older one, or none (a silo that
/// just joined or does not answer), counts as missing. Placements this silo made since a silo's figure was asked for
/// are counted against that silo (<see cref="NotePlaced"/>), so a burst of activations between two refreshes spreads
/// instead of landing all on the silo that looked lightest.</para>
/// </summary>
internal sealed class ShardLoadTable(
    LocalShards local, ShardLoadClient client, IClusterMembershipService membership, ILocalSiloDetails self,
    ProfileClusterOptions cluster, TimeProvider time, ILogger<ShardLoadTable> log) : ILifecycleParticipant<ISiloLifecycle>
{
    private readonly Lock _lock = new();
    private readonly Dictionary<SiloAddress, Figure> _figures = [];
    private int _placedHere;
    private int _rounds;

    /// <summary>This silo.</summary>
    public SiloAddress Self => self.SiloAddress;

    /// <summary>Refresh rounds completed (tests wait for rounds instead of time).</summary>
    public int Rounds => Volatile.Read(ref _rounds);

    private TimeSpan Period => TimeSpan.FromSeconds(cluster.LoadRefreshSeconds);

    private TimeSpan StaleAfter => Period * 3;

    /// <summary>Figures of the active silos, fresh ones only, this silo's live; with the time each was asked for.</summary>
    public Dictionary<SiloAddress, (SiloShardLoad Load, long AskedAt)> Fresh()
    {
        var fresh = new Dictionary<SiloAddress, (SiloShardLoad, long)>();
        lock (_lock)
        {
            foreach (var (silo, figure) in _figures)
            {
                if (time.GetElapsedTime(figure.AskedAt) <= StaleAfter) fresh[silo] = (figure.Load, figure.AskedAt);
            }
        }
        fresh[Self] = (local.Load(), time.GetTimestamp());
        return fresh;
    }

    /// <summary>The active silos as membership sees them now.</summary>
    public IReadOnlyList<SiloAddress> ActiveSilos() =>
        [.. membership.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress)];

    /// <summary>
    /// Of <paramref name="compatible"/>, the silo holding the fewest storage bytes, counting each placement this silo
    /// made there since its figure as one shard of the cluster's mean size; ties go to the fewest shards (an empty
    /// cluster fills evenly), then at random. Null when no compatible silo has a fresh figure.
    /// </summary>
    public SiloAddress? LeastLoaded(SiloAddress[] compatible)
    {
        var fresh = Fresh();
        long bytes = 0, shards = 0;
        foreach (var (load, _) in fresh.Values)
        {
            bytes += load.BudgetBytes;
            shards += load.Shards;
        }
        long meanShard = shards == 0 ? 0 : bytes / shards;
        SiloAddress? best = null;
        (long Bytes, long Shards, int Draw) bestScore = default;
        lock (_lock)
        {
            foreach (SiloAddress silo in compatible)
            {
                if (!fresh.TryGetValue(silo, out var f)) continue;
                int placed = silo.Equals(Self) ? _placedHere : _figures.TryGetValue(silo, out Figure? figure) ? figure.Placed : 0;
                (long, long, int) score = (f.Load.BudgetBytes + placed * meanShard, f.Load.Shards + placed, Random.Shared.Next());
                if (best is null || score.CompareTo(bestScore) < 0)
                {
                    best = silo;
                    bestScore = score;
                }
            }
        }
        return best;
    }

    /// <summary>Counts a placement on <paramref name="silo"/> until its next figure (which may or may not show it yet:
    /// a shard counts once its activation has opened it).</summary>
    public void NotePlaced(SiloAddress silo)
    {
        lock (_lock)
        {
            if (silo.Equals(Self)) _placedHere++;
            else if (_figures.TryGetValue(silo, out Figure? figure)) figure.Placed++;
        }
    }

    /// <summary>One refresh: asks every other active silo, drops silos that left.</summary>
    public async Task RefreshOnce(CancellationToken cancellationToken)
    {
        IReadOnlyList<SiloAddress> silos = ActiveSilos();
        long askedAt = time.GetTimestamp();
        lock (_lock)
        {
            _placedHere = 0;
            foreach (SiloAddress gone in _figures.Keys.Where(s => !silos.Contains(s)).ToList()) _figures.Remove(gone);
        }
        TimeSpan timeout = TimeSpan.FromSeconds(Math.Min(cluster.CallTimeoutSeconds, Math.Max(1, cluster.LoadRefreshSeconds * 2)));
        await Task.WhenAll(silos.Where(s => !s.Equals(Self)).Select(async silo =>
        {
            try
            {
                SiloShardLoad load = await client.On(silo).Report().WaitAsync(timeout, cancellationToken);
                lock (_lock) _figures[silo] = new Figure(load, askedAt);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // Its last figure stays until it goes stale; placement and rebalancing then leave that silo out.
                log.LogDebug(e, "Shard load of silo {Silo} not refreshed", silo);
            }
        }));
        Interlocked.Increment(ref _rounds);
    }

    public void Participate(ISiloLifecycle lifecycle) => SiloBackgroundLoop.Subscribe(lifecycle, nameof(ShardLoadTable), Loop);

    private async Task Loop(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(Period, time);
        try
        {
            do
            {
                try
                {
                    await RefreshOnce(cancellationToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    log.LogWarning(e, "Shard load refresh failed");
                }
            }
            while (await timer.WaitForNextTickAsync(cancellationToken));
        }
        catch (OperationCanceledException)
        {
        }
    }

    private sealed class Figure(SiloShardLoad load, long askedAt)
    {
        public SiloShardLoad Load { get; } = load;
        public long AskedAt { get; } = askedAt;
        public int Placed { get; set; }
    }
}
