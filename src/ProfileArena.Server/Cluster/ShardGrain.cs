using Orleans.Concurrency;
using Orleans.Placement;
using Orleans.Runtime.Placement;
using ProfileArena.Server.Storage;
using ProfileArena.Server.Storage.Shards;
using ProfileArena.Server.Storage.Wal;

namespace ProfileArena.Server.Cluster;

/// <summary>
/// A shard as a grain (native-notes.md, "Server storage": shard grains). It wraps the single server's
/// <see cref="Shard"/> unchanged: opened (recovered from its snapshot and WAL) in the background of activation when
/// its data exists, created at its first write, stopped with a snapshot at deactivation.
/// <para>Threads: the grain's turns only route. Writes go into the shard's own loop (group commit, fsync; applied behind the acknowledgement)
/// and the grain awaits it; queries merge on the thread pool under the shard's read locks. So the grain is
/// <see cref="ReentrantAttribute">reentrant</see>: concurrent writes reach the loop together and share one fsync,
/// and a query is never queued behind a write or a long merge (measured in Orleans: a read waited 1.4 s behind
/// a 1.5 s merge in a non-reentrant grain). Grain state (staged payloads, prepared transactions) is touched only
/// between awaits, on the activation's turn.</para>
/// <para>Long work returns early (Orleans fails a call after ResponseTimeout and an activation after its own
/// timeout): a query part runs in the background under a ticket (<see cref="ShardQueryTickets"/>) that the caller
/// collects with short calls; loading (ownership, snapshot, WAL replay — a full replay for a large shard, possibly
/// from blobs) runs in the background started by activation, and calls wait for it a bounded time
/// (<see cref="ProfileClusterOptions.LoadWaitSeconds"/>), then answer "loading, retry" (<see cref="ShardLoadingException"/>).</para>
/// <para>Lifetime: <see cref="KeepAliveAttribute">never collected when idle</see> — a shard's trees are its data
/// in memory and reloading one is a full replay. Retention, periodic snapshots and the abort of orphaned prepared
/// parts run on a grain timer.</para>
/// <para>Placement: by storage bytes (<see cref="ShardBytesPlacementAttribute"/>); moved only by the byte-driven
/// <see cref="ShardRebalancer"/> (<see cref="ImmovableAttribute">immovable</see> for Orleans' count-driven rebalancer
/// and call-graph repartitioner, should anyone enable them).</para>
/// </summary>
[KeepAlive]
[Reentrant]
[ShardBytesPlacement]
[Immovable]
internal sealed class ShardGrain(
    StorageOptions options, ProfileClusterOptions cluster, LocalShards local, ShardQueryTickets tickets, ShardGrainHooks hooks,
    TimeProvider time, ILoggerFactory logs, ILogger<ShardGrain> log)
    : Grain, IShardGrain
{
    private readonly Dictionary<Guid, Staged> _uploads = [];
    private readonly Dictionary<long, long> _prepared = []; // txn → when prepared (TimeProvider timestamp)
    private readonly CancellationTokenSource _lifetime = new(); // cancelled at deactivation: stops a load still waiting
    private string _key = "";
    private string _tenant = "";
    private int _number;
    private volatile Shard? _shard; // set by the background load (thread pool) or a first write (turn)
    private Task _loading = Task.CompletedTask;
    private Task<Shard>? _creating;
    private long _lastSnapshot;
    private int _preparing; // Prepare writes in flight (not yet in _prepared)

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _key = this.GetPrimaryKeyString();
        (_tenant, _number) = ShardGrainKey.Parse(_key);
        // Loading reads the snapshot and replays the WAL: I/O and CPU for as long as the shard is large. It runs
        // in the background, so activation returns at once whatever the shard's size; calls wait for it (Loaded).
        _loading = Task.Run(() => Load(_lifetime.Token));
        _ = ForgetIfLoadFails();
        _lastSnapshot = time.GetTimestamp();
        this.RegisterGrainTimer(Maintain, new GrainTimerCreationOptions
        {
            DueTime = TimeSpan.FromSeconds(options.RetentionIntervalSeconds),
            Period = TimeSpan.FromSeconds(options.RetentionIntervalSeconds),
            Interleave = true,
            KeepAlive = false,
        });
        return Task.CompletedTask;
    }

    /// <summary>Takes ownership of the shard and recovers it, if its data exists (else the first write creates it).</summary>
    private async Task Load(CancellationToken cancellationToken)
    {
        await hooks.BeforeOpen(_key, cancellationToken);
        if (!local.Media.ExistingShardNumbers(_tenant).Contains(_number)) return;
        cancellationToken.ThrowIfCancellationRequested();
        Adopt(ProfileStorage.OpenShard(local.Media, options, _tenant, _number, NowSeconds, local.Budget, logs));
    }

    /// <summary>A load that failed (medium unreachable, corrupt data, fenced) leaves the grain answering 503 with the
    /// reason until it is collected: deactivated when idle, so that the next call loads anew, as a failed activation
    /// would have been retried.</summary>
    private async Task ForgetIfLoadFails()
    {
        try
        {
            await _loading;
        }
        catch (Exception e)
        {
            if (!_lifetime.IsCancellationRequested) log.LogError(e, "Shard grain {Key} could not load its shard", _key);
            this.DeactivateOnIdle();
        }
    }

    /// <summary>The shard once loaded (null: no data yet), waiting for the load at most <paramref name="wait"/>.</summary>
    /// <exception cref="ShardLoadingException">Still loading after the wait.</exception>
    /// <exception cref="StorageUnavailableException">The load failed.</exception>
    private async Task<Shard?> Loaded(TimeSpan wait, CancellationToken cancellationToken = default)
    {
        Task loading = _loading;
        if (!loading.IsCompleted)
        {
            try
            {
                await loading.WaitAsync(wait, time, cancellationToken);
            }
            catch (TimeoutException)
            {
                throw new ShardLoadingException(_key);
            }
            catch (Exception) when (loading.IsCompleted)
            {
                // Failed: answered below.
            }
        }
        if (loading.Exception?.InnerException is { } failure)
            throw new StorageUnavailableException($"shard {_key} could not be loaded ({failure.GetType().Name}: {failure.Message}); the next call loads it again", failure);
        if (loading.IsCanceled) throw new StorageUnavailableException($"shard {_key} is deactivating");
        return _shard;
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _lifetime.Cancel();
        // The shard is disposed below: first every query part still reading it stops, and a load still running
        // ends (its ownership taken before a successor's, never after).
        await tickets.StopAll(_key);
        try
        {
            await _loading;
        }
        catch (Exception)
        {
            // Failed or cancelled: nothing was adopted.
        }
        Shard? shard = _shard;
        if (shard is null) return;
        _shard = null;
        local.Remove(_key);
        try
        {
            await shard.StopAsync(snapshot: true);
        }
        finally
        {
            shard.Dispose();
        }
        log.LogInformation("Shard grain {Key} deactivated ({Reason})", _key, reason.Description);
    }

    // ---------------------------------------------------------------- writes

    public Task StageChunk(Guid upload, byte[] chunk)
    {
        PurgeExpired(_uploads);
        if (!_uploads.TryGetValue(upload, out Staged? staged)) _uploads.Add(upload, staged = new Staged(new MemoryStream(), time.GetTimestamp()));
        staged.Data.Write(chunk);
        return Task.CompletedTask;
    }

    public async Task<ShardOutcome> Write(ShardWrite write)
    {
        byte[] payload = write.Payload;
        if (write.Upload != Guid.Empty)
        {
            if (!_uploads.Remove(write.Upload, out Staged? staged))
                return new ShardOutcome(ShardOutcomeKind.Unavailable, $"staged payload {write.Upload} is gone (expired or the shard moved); nothing was stored");
            payload = staged.Data.ToArray();
        }
        var (txn, profiles) = WalPayload.Decode(payload);
        try
        {
            foreach (IngestProfile p in profiles)
            {
                // The router and this grain draw shards with the same function; a mismatch is a routing bug.
                if (p.Series.Tenant != _tenant || ProfileStorage.ShardNumber(p.Series, options.ShardCount) != _number)
                    throw new InvalidOperationException($"series {p.Series} does not belong to shard {_key}");
            }
            if (txn != write.Txn) throw new InvalidOperationException($"payload of transaction {txn} sent as {write.Txn}");
            if (write.Prepare) _preparing++;
            try
            {
                Shard shard = await Loaded(cluster.CallLoadWait) ?? await Create();
                await shard.Enqueue(write.Prepare ? Shard.WorkKind.Prepare : Shard.WorkKind.Ingest, profiles, write.Txn);
                if (write.Prepare) _prepared[write.Txn] = time.GetTimestamp();
                await hooks.AfterWrite(_key);
            }
            finally
            {
                if (write.Prepare) _preparing--;
            }
            return ShardOutcome.Ok;
        }
        catch (Exception e) when (WireCodec.Outcome(e) is { } outcome)
        {
            return outcome;
        }
        finally
        {
            foreach (IngestProfile p in profiles) p.Stacks.Dispose();
        }
    }

    public async Task<ShardOutcome> Commit(long txn)
    {
        try
        {
            if (_shard is not { } shard || !_prepared.ContainsKey(txn))
                return new ShardOutcome(ShardOutcomeKind.Unavailable, $"no prepared part {txn} in shard {_key} (aborted after {cluster.PreparedTimeoutSeconds} s, or the shard was reactivated)");
            await shard.Enqueue(Shard.WorkKind.Commit, null, txn);
            // Forgotten only once committed: a commit the WAL refused leaves the part for the timer to abort.
            _prepared.Remove(txn);
            return ShardOutcome.Ok;
        }
        catch (Exception e) when (WireCodec.Outcome(e) is { } outcome)
        {
            return outcome;
        }
    }

    public async Task Abort(long txn)
    {
        if (_shard is { } shard && _prepared.Remove(txn)) await shard.Enqueue(Shard.WorkKind.Abort, null, txn);
    }

    private async Task<Shard> Create()
    {
        _creating ??= Task.Run(() => ProfileStorage.CreateShard(local.Media, options, _tenant, _number, NowSeconds, local.Budget, logs));
        try
        {
            Shard shard = await _creating;
            if (_shard is null) Adopt(shard);
            return shard;
        }
        catch
        {
            _creating = null; // a later write tries again (e.g. after a full disk)
            throw;
        }
    }

    private void Adopt(Shard shard)
    {
        _shard = shard;
        local.Add(_key, shard);
    }

    // ---------------------------------------------------------------- reads (interleaved with everything)

    public Task<Guid> StartQuery(ShardQuery query) => Task.FromResult(tickets.Start(_key, cancel => QueryPart(query, cancel)));

    public Task<ShardQueryReply?> TakeQuery(Guid ticket) => tickets.Take(_key, ticket, cluster.QueryPollWait);

    public Task<byte[]> ReadChunk(Guid ticket, long offset) => Task.FromResult(tickets.ReadChunk(_key, ticket, offset));

    public Task CancelQuery(Guid ticket)
    {
        tickets.Cancel(_key, ticket);
        return Task.CompletedTask;
    }

    /// <summary>This shard's part of <paramref name="query"/>, on the thread pool (not the activation's turn): the
    /// shard's locks make the merge safe beside the loop's writes, and the grain keeps answering meanwhile.
    /// Cancellation (the query's client went away, its deadline passed, the grain deactivates) is seen before the
    /// merge and before the partial tree is saved; a merge under way runs to its end.</summary>
    private async Task<ShardQueryPart> QueryPart(ShardQuery query, CancellationToken cancellationToken)
    {
        var (_, _, pieces, stepPieces) = ProfileStorage.PlanQuery(options, query.Now, query.From, query.Until, query.Step);
        using StepPieces pooled = stepPieces; // its arrays go back to the pool when the part is done
        var samples = new long[stepPieces.Length];
        Shard? shard = await Loaded(TimeSpan.FromSeconds(cluster.LoadWaitSeconds), cancellationToken);
        await hooks.BeforeQuery(_key, cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        if (shard is null) return new ShardQueryPart(ShardOutcome.Ok, 0, samples, [], null);
        SeriesSelector selector = WireCodec.Selector(query.Name, query.Matchers)!;
        try
        {
            Partial partial = Merge(shard, selector, pieces, stepPieces, samples, query, cancellationToken);
            WireSeries[] matched = [.. partial.Matched.Select(m => WireCodec.Series(m.Key, m.Metadata))];
            return new ShardQueryPart(ShardOutcome.Ok, partial.TreesMerged, samples, matched, partial.Tree);
        }
        catch (StoreLimitExceededException e)
        {
            return new ShardQueryPart(new ShardOutcome(ShardOutcomeKind.QueryLimit, e.Message), 0, samples, [], null);
        }
    }

    /// <summary>
    /// The shard's partial result: its matching trees merged into one tree of a fresh store, saved in the
    /// snapshot format (<c>TreeStore.Save</c>: 32 bytes per node, names once, uint64 values, checksummed), so the
    /// receiving silo rebuilds it exactly. Size: the partial's nodes × 32 B + its distinct names; capped by the
    /// query caps (<see cref="ProfileClusterOptions.MaxPartialNodes"/>: 5 M nodes ≈ 160 MB + names, over Orleans'
    /// 100 MB message cap, hence <see cref="ProfileClusterOptions.MessageChunkBytes"/> pieces).
    /// </summary>
    private static Partial Merge(Shard shard, SeriesSelector selector, List<(int, long)> pieces, StepPieces stepPieces, long[] samples, ShardQuery query, CancellationToken cancellationToken)
    {
        using var store = new TreeStore(new TreeStoreOptions { MaxNodes = query.MaxNodes, MaxNativeBytes = query.MaxNativeBytes });
        ProfileTree tree = store.CreateTree();
        var matched = new List<(SeriesKey, SeriesMetadata)>();
        int merged = shard.Query(selector, pieces, stepPieces, tree, samples, matched);
        if (merged == 0) return new Partial(merged, matched, null);
        cancellationToken.ThrowIfCancellationRequested();
        var bytes = new MemoryStream();
        store.Save(bytes);
        return new Partial(merged, matched, bytes);
    }

    public async Task<ShardSeriesReply> Series(ShardSeriesQuery query)
    {
        Shard? shard;
        try
        {
            shard = await Loaded(cluster.CallLoadWait);
        }
        catch (StorageUnavailableException e)
        {
            return new ShardSeriesReply(WireCodec.Outcome(e)!, []);
        }
        if (shard is null) return new ShardSeriesReply(ShardOutcome.Ok, []);
        // Read-your-writes without blocking the activation's turn: wait for the acknowledged writes to be applied first.
        await shard.WhenAcknowledgedApplied();
        List<(int, long)> pieces = ProfileStorage.PlanSeries(options, query.Now, query.From, query.Until);
        var found = new HashSet<SeriesKey>();
        shard.Series(WireCodec.Selector(query.Name, query.Matchers), pieces, found);
        return new ShardSeriesReply(ShardOutcome.Ok, [.. found.Select(k => WireCodec.Series(k, SeriesMetadata.Default))]);
    }

    // ---------------------------------------------------------------- place

    public Task<ShardPlace> Locate() => Task.FromResult(new ShardPlace(GrainContext.Address.SiloAddress!, _shard?.BudgetBytes ?? 0));

    public Task<bool> MoveTo(SiloAddress target)
    {
        PurgeExpired(_uploads);
        // Not while loading, nor while query parts run or wait for collection (a move would cancel them).
        if (_prepared.Count > 0 || _preparing > 0 || _uploads.Count > 0 || !_loading.IsCompleted || tickets.Held(_key) > 0) return Task.FromResult(false);
        // Checked and started in one turn: the migration marks the activation deactivating at once, so no call that
        // arrives after the check runs here (Orleans forwards it to the new activation).
        RequestContext.Set(IPlacementDirector.PlacementHintKey, target);
        this.MigrateOnIdle();
        return Task.FromResult(true);
    }

    // ---------------------------------------------------------------- maintenance

    private async Task Maintain(CancellationToken cancellationToken)
    {
        PurgeExpired(_uploads);
        foreach (var (txn, at) in _prepared.ToList())
        {
            if (time.GetElapsedTime(at).TotalSeconds < cluster.PreparedTimeoutSeconds) continue;
            log.LogWarning("Shard grain {Key}: prepared part {Txn} had no commit after {Seconds} s (its receiving silo died?); aborted", _key, txn, cluster.PreparedTimeoutSeconds);
            await Abort(txn);
        }
        if (_shard is not { } shard) return;
        try
        {
            await shard.Enqueue(Shard.WorkKind.Retention, null, 0);
            if (options.SnapshotIntervalSeconds > 0 && time.GetElapsedTime(_lastSnapshot).TotalSeconds >= options.SnapshotIntervalSeconds)
            {
                await shard.Enqueue(Shard.WorkKind.Snapshot, null, 0);
                _lastSnapshot = time.GetTimestamp();
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or StorageUnavailableException)
        {
            log.LogError(e, "Shard grain {Key}: periodic retention or snapshot failed; the WAL keeps every record", _key);
        }
    }

    private void PurgeExpired(Dictionary<Guid, Staged> staged)
    {
        foreach (var (id, s) in staged.ToList())
        {
            if (time.GetElapsedTime(s.Since).TotalSeconds > cluster.CallTimeoutSeconds * 2) staged.Remove(id);
        }
    }

    private long NowSeconds() => time.GetUtcNow().ToUnixTimeSeconds();

    private sealed record Staged(MemoryStream Data, long Since);

    private sealed record Partial(int TreesMerged, List<(SeriesKey Key, SeriesMetadata Metadata)> Matched, MemoryStream? Tree);
}
