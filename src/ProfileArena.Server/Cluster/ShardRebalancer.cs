namespace ProfileArena.Server.Cluster;

/// <summary>One planned move: shard grain <paramref name="Key"/> holding <paramref name="Bytes"/> to <paramref name="Target"/>.</summary>
internal sealed record RebalanceMove<TSilo>(string Key, long Bytes, TSilo Target);

/// <summary>
/// The rebalancing rule, on figures alone (no Orleans, so it is tested as a plain function).
/// <para>The line: with mean m of the silos' bytes, a silo is over when it holds more than
/// max(m × (1 + ratio), m + minBytes). Only a silo over the line moves, one shard at a time, to the silo holding the
/// fewest bytes (T), and only a shard s that leaves that target at or under the line and under its budget's
/// admission line; of those, the largest.</para>
/// <para>Why it ends and never ping-pongs: a move does not change the mean, so the line stays where it is; the target
/// ends at or under it and so never moves the shard back on the same figures. And with the source at B over the line,
/// T + s ≤ line &lt; B, so s &lt; B − T: the sum of squares of the silos' bytes drops by 2s(B − T − s) &gt; 0 with every
/// move — there are finitely many placements, so moves stop.</para>
/// </summary>
internal static class RebalancePlan
{
    /// <summary>The line above which a silo is over, for <paramref name="bytes"/> the silos' figures.</summary>
    public static double Line(IReadOnlyCollection<long> bytes, double ratio, long minBytes)
    {
        double mean = bytes.Count == 0 ? 0 : bytes.Sum(b => (double)b) / bytes.Count;
        return Math.Max(mean * (1 + ratio), mean + minBytes);
    }

    /// <summary>The move <paramref name="self"/> should make, or null.</summary>
    /// <param name="self">The deciding silo (one of <paramref name="silos"/>).</param>
    /// <param name="silos">Every active silo's bytes and admission limit (0: no budget).</param>
    /// <param name="shards">The deciding silo's shards and their bytes.</param>
    /// <param name="ratio">How far over the mean, as a ratio of it, a silo must be.</param>
    /// <param name="minBytes">How far over the mean, in bytes, a silo must be.</param>
    public static RebalanceMove<TSilo>? Choose<TSilo>(TSilo self, IReadOnlyList<(TSilo Silo, long Bytes, long Limit)> silos,
        IEnumerable<(string Key, long Bytes)> shards, double ratio, long minBytes) where TSilo : notnull
    {
        if (silos.Count < 2) return null;
        double line = Line([.. silos.Select(s => s.Bytes)], ratio, minBytes);
        var comparer = EqualityComparer<TSilo>.Default;
        var me = silos.First(s => comparer.Equals(s.Silo, self));
        if (me.Bytes <= line) return null;
        var target = silos.Where(s => !comparer.Equals(s.Silo, self)).MinBy(s => s.Bytes);
        long room = (long)Math.Floor(line) - target.Bytes;
        if (target.Limit > 0) room = Math.Min(room, target.Limit - target.Bytes);
        (string Key, long Bytes)? best = null;
        foreach (var shard in shards)
        {
            if (shard.Bytes <= 0 || shard.Bytes > room) continue;
            if (best is null || shard.Bytes > best.Value.Bytes || (shard.Bytes == best.Value.Bytes && string.CompareOrdinal(shard.Key, best.Value.Key) < 0)) best = shard;
        }
        return best is { } b ? new RebalanceMove<TSilo>(b.Key, b.Bytes, target.Silo) : null;
    }
}

/// <summary>
/// Each silo's periodic rebalancing check (<see cref="ProfileClusterOptions.RebalanceIntervalSeconds"/>; 0: off): when
/// fresh figures of every active silo show this silo over the line (<see cref="RebalancePlan"/>), it moves one shard
/// grain to the silo holding the fewest bytes, waits until the shard is open there, and makes no further move until
/// every figure was asked for after that. One move per period per silo, bounded by the figures.
/// <para>A move keeps every acknowledged sample: the grain refuses to move while a call spanning messages is half
/// done (<see cref="IShardGrain.MoveTo"/>), its deactivation stops the shard with a snapshot on the shared medium
/// (every acknowledged write is in the WAL before that anyway), and the activation on the target opens it from there,
/// taking ownership first (fencing out any writer left behind).</para>
/// </summary>
internal sealed class ShardRebalancer(
    ShardLoadTable table, LocalShards local, IGrainFactory grains, ProfileClusterOptions cluster, TimeProvider time, ILogger<ShardRebalancer> log)
    : ILifecycleParticipant<ISiloLifecycle>
{
    private long _lastMoveDone = long.MinValue;
    private int _moves;

    /// <summary>Shards this silo moved away.</summary>
    public int Moves => Volatile.Read(ref _moves);

    public void Participate(ISiloLifecycle lifecycle)
    {
        if (cluster.RebalanceIntervalSeconds > 0) SiloBackgroundLoop.Subscribe(lifecycle, nameof(ShardRebalancer), Loop);
    }

    private async Task Loop(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(cluster.RebalanceIntervalSeconds), time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                try
                {
                    await CheckOnce(cancellationToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    log.LogWarning(e, "Rebalancing check failed; next check in {Seconds} s", cluster.RebalanceIntervalSeconds);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>One check: at most one move.</summary>
    internal async Task CheckOnce(CancellationToken cancellationToken)
    {
        var fresh = table.Fresh();
        IReadOnlyList<SiloAddress> active = table.ActiveSilos();
        // Every active silo's figure must be fresh and asked for after this silo's last move finished: a missing silo
        // could be the lightest, and a figure older than the move does not show it (the target would look emptier).
        if (!active.Contains(table.Self) || active.Any(s => !fresh.TryGetValue(s, out var f) || f.AskedAt <= _lastMoveDone)) return;
        List<(SiloAddress Silo, long Bytes, long Limit)> silos = [.. active.Select(s => (s, fresh[s].Load.BudgetBytes, fresh[s].Load.AdmissionLimit))];
        var move = RebalancePlan.Choose(table.Self, silos, local.Sizes(), cluster.RebalanceThresholdRatio, cluster.RebalanceMinBytes);
        if (move is null) return;
        long before = fresh[table.Self].Load.BudgetBytes;
        long targetBefore = fresh[move.Target].Load.BudgetBytes;
        double mean = silos.Average(s => (double)s.Bytes);
        IShardGrain grain = grains.GetGrain<IShardGrain>(move.Key);
        if (!await grain.MoveTo(move.Target))
        {
            log.LogDebug("Shard {Key} is in the middle of a call spanning messages; not moved this period", move.Key);
            return;
        }
        // The old activation leaves this silo once idle (its deactivation stops the shard with a snapshot); the call
        // below then reaches the new one, which answers once its activation has opened the shard.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        TimeSpan limit = TimeSpan.FromSeconds(cluster.CallTimeoutSeconds * 2);
        while (local.Keys.Contains(move.Key) && clock.Elapsed < limit) await Task.Delay(20, cancellationToken);
        ShardPlace place = await grain.Locate();
        _lastMoveDone = time.GetTimestamp();
        if (place.Silo.Equals(table.Self))
        {
            log.LogWarning("Rebalance: shard {Key} ({Bytes} B) was to move from {From} to {To} but is still here", move.Key, move.Bytes, table.Self, move.Target);
            return;
        }
        Interlocked.Increment(ref _moves);
        log.LogInformation(
            "Rebalance: moved shard {Key} ({Bytes} B) from {From} to {To} in {Seconds:F2} s (before the move: source {SourceBytes} B, target {TargetBytes} B, mean {Mean:F0} B)",
            move.Key, place.Bytes, table.Self, place.Silo, clock.Elapsed.TotalSeconds, before, targetBefore, mean);
    }
}
