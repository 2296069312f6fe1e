using Orleans.Concurrency;
using Orleans.Placement;
using Orleans.Runtime.Placement;
using ProfileArena.Server.Storage;
using ProfileArena.Server.Storage.Shards;
using ProfileArena.Server.Storage.Wal;

namespace ProfileArena.Server.Cluster;

/// <summary>
/// A shard as a grain (native-notes.md, "Server storage": shard grains). It wraps the single server's
/// <see cref="Shard"/> unchanged: opened (recovered from its snapshot and WAL) at activation when its directory
/// exists, created at its first write, stopped with a snapshot at deactivation.
/// <para>Threads: the grain's turns only route. Writes go into the shard's own loop (group commit, fsync; applied behind the acknowledgement)
/// and the grain awaits it; queries merge on the thread pool under the shard's read locks. So the grain is
/// <see cref="ReentrantAttribute">reentrant</see>: concurrent writes reach the loop together and share one fsync,
/// and a query is never queued behind a write or a long merge (measured in Orleans: a read waited 1.4 s behind
/// a 1.5 s merge in a non-reentrant grain). Grain state (staged payloads, pending results, prepared transactions)
/// is touched only between awaits, on the activation's turn.</para>
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
internal sealed class ShardGrain(StorageOptions options, ProfileClusterOptions cluster, LocalShards local, TimeProvider time, ILoggerFactory logs, ILogger<ShardGrain> log)
    : Grain, IShardGrain
{
    private readonly Dictionary<Guid, Staged> _uploads = [];
    private readonly Dictionary<Guid, Staged> _results = [];
    private readonly Dictionary<long, long> _prepared = []; // txn → when prepared (TimeProvider timestamp)
    private string _key = "";
    private string _tenant = "";
    private int _number;
    private Shard? _shard;
    private Task<Shard>? _creating;
    private long _lastSnapshot;
    private int _preparing; // Prepare writes in flight (not yet in _prepared)

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _key = this.GetPrimaryKeyString();
        (_tenant, _number) = ShardGrainKey.Parse(_key);
        if (await Task.Run(() => local.Media.ExistingShardNumbers(_tenant).Contains(_number), cancellationToken))
        {
            // Recovery reads the snapshot and replays the WAL: file I/O and CPU, off the activation's turn.
            // It must fit the activation's timeout (large shards: see README "Running a cluster").
            Shard shard = await Task.Run(() => ProfileStorage.OpenShard(local.Media, options, _tenant, _number, NowSeconds, local.Budget, logs), cancellationToken);
            Adopt(shard);
        }
        _lastSnapshot = time.GetTimestamp();
        this.RegisterGrainTimer(Maintain, new GrainTimerCreationOptions
        {
            DueTime = TimeSpan.FromSeconds(options.RetentionIntervalSeconds),
            Period = TimeSpan.FromSeconds(options.RetentionIntervalSeconds),
            Interleave = true,
            KeepAlive = false,
        });
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
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
                Shard shard = _shard ?? await Create();
                await shard.Enqueue(write.Prepare ? Shard.WorkKind.Prepare : Shard.WorkKind.Ingest, profiles, write.Txn);
                if (write.Prepare) _prepared[write.Txn] = time.GetTimestamp();
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

    public async Task<ShardQueryReply> Query(ShardQuery query)
    {
        var (_, _, pieces, stepPieces) = ProfileStorage.PlanQuery(options, query.Now, query.From, query.Until, query.Step);
        var samples = new long[stepPieces.Length];
        if (_shard is not { } shard) return new ShardQueryReply(ShardOutcome.Ok, 0, samples, [], 0, [], Guid.Empty);
        SeriesSelector selector = WireCodec.Selector(query.Name, query.Matchers)!;
        Partial partial;
        try
        {
            // The merge runs on the thread pool, not on the activation's turn: the shard's locks make it safe
            // beside the loop's writes, and the grain keeps answering meanwhile.
            partial = await Task.Run(() => Merge(shard, selector, pieces, stepPieces, samples, query));
        }
        catch (StoreLimitExceededException e)
        {
            return new ShardQueryReply(new ShardOutcome(ShardOutcomeKind.QueryLimit, e.Message), 0, samples, [], 0, [], Guid.Empty);
        }
        WireSeries[] matched = [.. partial.Matched.Select(m => WireCodec.Series(m.Key, m.Metadata))];
        if (partial.Tree is null) return new ShardQueryReply(ShardOutcome.Ok, partial.TreesMerged, samples, matched, 0, [], Guid.Empty);
        long length = partial.Tree.Length;
        int first = (int)Math.Min(length, cluster.MessageChunkBytes);
        byte[] head = partial.Tree.GetBuffer().AsSpan(0, first).ToArray();
        Guid more = Guid.Empty;
        if (first < length)
        {
            // Larger than one message: the caller reads the rest with ReadChunk; unread results expire.
            PurgeExpired(_results);
            more = Guid.NewGuid();
            _results.Add(more, new Staged(partial.Tree, time.GetTimestamp()));
        }
        return new ShardQueryReply(ShardOutcome.Ok, partial.TreesMerged, samples, matched, length, head, more);
    }

    /// <summary>
    /// The shard's partial result: its matching trees merged into one tree of a fresh store, saved in the
    /// snapshot format (<c>TreeStore.Save</c>: 32 bytes per node, names once, uint64 values, checksummed), so the
    /// receiving silo rebuilds it exactly. Size: the partial's nodes × 32 B + its distinct names; capped by the
    /// query caps (<see cref="ProfileClusterOptions.MaxPartialNodes"/>: 5 M nodes ≈ 160 MB + names, over Orleans'
    /// 100 MB message cap, hence <see cref="ProfileClusterOptions.MessageChunkBytes"/> pieces).
    /// </summary>
    private static Partial Merge(Shard shard, SeriesSelector selector, List<(int, long)> pieces, List<(int, long)>[] stepPieces, long[] samples, ShardQuery query)
    {
        using var store = new TreeStore(new TreeStoreOptions { MaxNodes = query.MaxNodes, MaxNativeBytes = query.MaxNativeBytes });
        ProfileTree tree = store.CreateTree();
        var matched = new List<(SeriesKey, SeriesMetadata)>();
        int merged = shard.Query(selector, pieces, stepPieces, tree, samples, matched);
        if (merged == 0) return new Partial(merged, matched, null);
        var bytes = new MemoryStream();
        store.Save(bytes);
        return new Partial(merged, matched, bytes);
    }

    public Task<byte[]> ReadChunk(Guid result, long offset)
    {
        if (!_results.TryGetValue(result, out Staged? staged) || offset < 0 || offset >= staged.Data.Length)
            throw new InvalidOperationException($"partial result {result} of shard {_key} has no bytes at {offset} (expired or already read)");
        int count = (int)Math.Min(staged.Data.Length - offset, cluster.MessageChunkBytes);
        byte[] chunk = staged.Data.GetBuffer().AsSpan((int)offset, count).ToArray();
        if (offset + count == staged.Data.Length) _results.Remove(result);
        return Task.FromResult(chunk);
    }

    public async Task<WireSeries[]> Series(ShardSeriesQuery query)
    {
        if (_shard is not { } shard) return [];
        // Read-your-writes without blocking the activation's turn: wait for the acknowledged writes to be applied first.
        await shard.WhenAcknowledgedApplied();
        List<(int, long)> pieces = ProfileStorage.PlanSeries(options, query.Now, query.From, query.Until);
        var found = new HashSet<SeriesKey>();
        shard.Series(WireCodec.Selector(query.Name, query.Matchers), pieces, found);
        return [.. found.Select(k => WireCodec.Series(k, SeriesMetadata.Default))];
    }

    // ---------------------------------------------------------------- place

    public Task<ShardPlace> Locate() => Task.FromResult(new ShardPlace(GrainContext.Address.SiloAddress!, _shard?.BudgetBytes ?? 0));

    public Task<bool> MoveTo(SiloAddress target)
    {
        PurgeExpired(_uploads);
        PurgeExpired(_results);
        if (_prepared.Count > 0 || _preparing > 0 || _uploads.Count > 0 || _results.Count > 0) return Task.FromResult(false);
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
        PurgeExpired(_results);
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
