using System.Globalization;
using ProfileArena.Server.Buffers;
using ProfileArena.Server.Storage;
using ProfileArena.Server.Storage.Shards;
using ProfileArena.Server.Storage.Wal;

namespace ProfileArena.Server.Cluster;

/// <summary>
/// <see cref="IProfileStorage"/> of a silo in a cluster: the HTTP layer is the single server's, this routes.
/// A write goes to the shard grains of its series (<see cref="ProfileStorage.ShardNumber"/>, the single server's
/// function), a query fans out to the tenant's shard grains and merges their partial trees into the caller's
/// destination with <c>MergeFrom</c> across stores — the same trees the single node merges, so the same answer.
/// <para>All or nothing across shards as the single node does it: one shard → one Ingest; several → a durable
/// Prepare in each, then a Commit in each (an Abort of the prepared ones if any refused). What differs: the
/// router is another process than the shards, so when this silo dies between prepares and commits the prepared
/// parts wait in their grains until <see cref="ProfileClusterOptions.PreparedTimeoutSeconds"/> aborts them (the
/// call was never acknowledged, nothing applied); when it dies between commits the call survives in some shards
/// only (the single node has the same gap, closing it needs a decision log).</para>
/// </summary>
internal sealed class ClusterProfileStorage(IGrainFactory grains, StorageOptions options, ProfileClusterOptions cluster, LocalShards local, TimeProvider time) : IProfileStorage
{
    private volatile bool _ready;

    /// <summary>True while this silo is active in the cluster (<see cref="ClusterReadiness"/>).</summary>
    public bool IsReady => _ready;

    internal void SetReady(bool ready) => _ready = ready;

    public async ValueTask IngestAsync(IReadOnlyList<IngestProfile> profiles, CancellationToken cancellationToken)
    {
        ThrowIfNotReady();
        ProfileStorage.ValidateProfiles(profiles);
        var parts = new SortedDictionary<string, List<IngestProfile>>(StringComparer.Ordinal);
        foreach (IngestProfile p in profiles)
        {
            string key = ShardGrainKey.For(p.Series.Tenant, ProfileStorage.ShardNumber(p.Series, options.ShardCount));
            if (!parts.TryGetValue(key, out List<IngestProfile>? list)) parts.Add(key, list = []);
            list.Add(p);
        }
        if (parts.Count == 0) return;
        // No cancellation once sent: a write that may already be durable is waited for, never abandoned.
        if (parts.Count == 1)
        {
            var (key, list) = parts.First();
            ShardOutcome outcome;
            try
            {
                outcome = await Send(key, list, prepare: false, 0);
            }
            catch (Exception e)
            {
                // Orleans' own failures (call timeout, silo gone): the outcome is unknown, as for a client whose
                // connection dropped; the WAL record is there or not, never half.
                throw new StorageOutcomeUnknownException($"shard {key} did not answer ({e.GetType().Name}: {e.Message}); the write may or may not have been stored", e);
            }
            WireCodec.ThrowIfFailed(outcome, key);
            return;
        }
        long txn = Random.Shared.NextInt64(1, long.MaxValue);
        var prepared = parts.Select(kv => (Key: kv.Key, Task: Send(kv.Key, kv.Value, prepare: true, txn))).ToList();
        try
        {
            await Task.WhenAll(prepared.Select(p => p.Task));
        }
        catch
        {
            // A grain call failed outright (timeout, silo gone): treated as a refusal below.
        }
        var refused = prepared.FirstOrDefault(p => !p.Task.IsCompletedSuccessfully || p.Task.Result.Kind != ShardOutcomeKind.Ok);
        if (refused.Task is not null)
        {
            // Aborted before the refusal is answered, so that the client's next write never meets this call's
            // reservations (a shard that does not answer drops its part at Cluster:PreparedTimeoutSeconds).
            try
            {
                await Task.WhenAll(prepared.Where(p => p.Task.IsCompletedSuccessfully && p.Task.Result.Kind == ShardOutcomeKind.Ok)
                    .Select(p => Grain(p.Key).Abort(txn)));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A silo gone or timing out: its prepared part expires by itself.
            }
            if (!refused.Task.IsCompletedSuccessfully)
                throw new StorageUnavailableException($"shard {refused.Key} did not answer: {refused.Task.Exception?.InnerException?.Message}; nothing was stored", refused.Task.Exception?.InnerException);
            WireCodec.ThrowIfFailed(refused.Task.Result, refused.Key);
        }
        var commits = prepared.Select(p => (p.Key, Task: Grain(p.Key).Commit(txn))).ToList();
        try
        {
            await Task.WhenAll(commits.Select(c => c.Task));
        }
        catch
        {
        }
        var failed = commits.FirstOrDefault(c => !c.Task.IsCompletedSuccessfully || c.Task.Result.Kind != ShardOutcomeKind.Ok);
        if (failed.Task is not null)
        {
            string why = failed.Task.IsCompletedSuccessfully ? failed.Task.Result.Message! : failed.Task.Exception?.InnerException?.Message ?? "failed";
            throw new StorageOutcomeUnknownException($"a write spanning {parts.Count} shards was not confirmed by every shard (shard {failed.Key}: {why}); its profiles may be stored in some shards only");
        }
    }

    /// <summary>One shard's part as its WAL payload, in one message or staged in pieces.</summary>
    private async Task<ShardOutcome> Send(string key, List<IngestProfile> profiles, bool prepare, long txn)
    {
        IShardGrain grain = Grain(key);
        using PooledBuffer payload = WalPayload.Encode(profiles, txn);
        ReadOnlyMemory<byte> bytes = payload.WrittenMemory;
        int chunk = cluster.MessageChunkBytes;
        if (bytes.Length <= chunk) return await grain.Write(new ShardWrite(prepare, txn, bytes.ToArray(), Guid.Empty));
        var upload = Guid.NewGuid();
        for (int at = 0; at < bytes.Length; at += chunk)
            await grain.StageChunk(upload, bytes.Slice(at, Math.Min(chunk, bytes.Length - at)).ToArray());
        return await grain.Write(new ShardWrite(prepare, txn, [], upload));
    }

    public async ValueTask<QueryResult> QueryAsync(string tenant, SeriesSelector selector, long fromSeconds, long untilSeconds, ProfileTree destination, long timelineStepSeconds = 0, CancellationToken cancellationToken = default)
    {
        ThrowIfNotReady();
        long now = NowSeconds();
        var (from, _, step, steps) = ProfileStorage.Timeline(fromSeconds, untilSeconds, timelineStepSeconds); // the shard grains plan the pieces
        var query = new ShardQuery(selector.Name, WireCodec.Matchers(selector), fromSeconds, untilSeconds, timelineStepSeconds, now, cluster.MaxPartialNodes, cluster.MaxPartialNativeBytes);
        string[] keys = [.. ShardNumbers(tenant).Select(n => ShardGrainKey.For(tenant, n))];
        var parts = new QueryParts(keys);
        try
        {
            ShardQueryReply[] replies = await Collect(parts, query, cancellationToken);
            var samples = new long[steps];
            var matched = new List<(SeriesKey Key, SeriesMetadata Metadata)>();
            int merged = 0;
            for (int i = 0; i < replies.Length; i++)
            {
                ShardQueryReply reply = replies[i];
                WireCodec.ThrowIfFailed(reply.Outcome, keys[i], cluster.MaxPartialNodes);
                if (reply.Samples.Length != samples.Length)
                    throw new StorageUnavailableException($"shard {keys[i]} answered {reply.Samples.Length} timeline steps, {samples.Length} expected (silos with different Storage settings?)");
                for (int s = 0; s < samples.Length; s++)
                    samples[s] = reply.Samples[s] > long.MaxValue - samples[s] ? long.MaxValue : samples[s] + reply.Samples[s]; // saturating, as a shard adds
                matched.AddRange(reply.Matched.Select(m => (WireCodec.Key(tenant, m), WireCodec.Metadata(m))));
                merged += reply.TreesMerged;
                if (reply.TreeLength > 0) await MergePartial(keys[i], reply, destination, cancellationToken);
                parts.Done(i);
            }
            return ProfileStorage.QueryResultOf(from, step, samples, matched, merged);
        }
        finally
        {
            // Whatever is not collected to the end (a failure, a refusal, the deadline, the client gone) is stopped
            // and released now rather than at Cluster:QueryResultSeconds.
            parts.CancelUnfinished(this);
        }
    }

    /// <summary>
    /// Starts every shard's part at once and collects each with short calls (<see cref="IShardGrain.TakeQuery"/>)
    /// until all answered, the client went away (<paramref name="aborted"/>: <see cref="OperationCanceledException"/>)
    /// or <see cref="ProfileClusterOptions.QueryTimeoutSeconds"/> passed (503 naming the shards that had not
    /// answered). A shard that fails, or whose silo died, fails the query with 503: a partial answer is never
    /// passed off as the whole one.
    /// </summary>
    private async Task<ShardQueryReply[]> Collect(QueryParts parts, ShardQuery query, CancellationToken aborted)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(cluster.QueryTimeoutSeconds), time);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(aborted, deadline.Token);
        Task<ShardQueryReply>[] calls = new Task<ShardQueryReply>[parts.Keys.Length];
        for (int i = 0; i < calls.Length; i++)
        {
            calls[i] = CollectOne(parts, i, query, stop.Token);
            // One shard failed: the query fails, the others stop collecting now.
            _ = calls[i].ContinueWith(_ => StopQuietly(stop), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        try
        {
            return await Task.WhenAll(calls);
        }
        catch (Exception)
        {
            aborted.ThrowIfCancellationRequested();
            if (calls.FirstOrDefault(c => c.IsFaulted && c.Exception!.InnerException is not OperationCanceledException) is { } failed)
                throw failed.Exception!.InnerException!;
            string[] late = [.. parts.Keys.Where((_, i) => !calls[i].IsCompletedSuccessfully)];
            throw new StorageUnavailableException($"shard {string.Join(", ", late)} did not answer the query within Cluster:QueryTimeoutSeconds ({cluster.QueryTimeoutSeconds} s)");
        }
    }

    private static void StopQuietly(CancellationTokenSource stop)
    {
        try
        {
            stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The query has ended already.
        }
    }

    private async Task<ShardQueryReply> CollectOne(QueryParts parts, int i, ShardQuery query, CancellationToken stop)
    {
        string key = parts.Keys[i];
        IShardGrain grain = Grain(key);
        try
        {
            parts.Started(i, await grain.StartQuery(query).WaitAsync(stop));
            while (true)
            {
                // Each call waits in the grain at most Cluster:CallTimeoutSeconds / 4 (QueryPollWait).
                if (await grain.TakeQuery(parts.Tickets[i]).WaitAsync(stop) is { } reply) return reply;
            }
        }
        catch (Exception e) when (e is not (OperationCanceledException or StorageUnavailableException))
        {
            // Orleans' own failures (call timeout, silo gone).
            throw new StorageUnavailableException($"shard {key} did not answer the query ({e.GetType().Name}: {e.Message})", e);
        }
    }

    /// <summary>The shards of one query, their tickets and which were collected to the end.</summary>
    private sealed class QueryParts(string[] keys)
    {
        public string[] Keys { get; } = keys;
        public Guid[] Tickets { get; } = new Guid[keys.Length];
        private readonly bool[] _done = new bool[keys.Length];

        public void Started(int i, Guid ticket) => Tickets[i] = ticket;

        public void Done(int i) => _done[i] = true;

        public void CancelUnfinished(ClusterProfileStorage storage)
        {
            for (int i = 0; i < Keys.Length; i++)
            {
                if (!_done[i] && Tickets[i] != Guid.Empty) storage.Cancel(Keys[i], Tickets[i]);
            }
        }
    }

    /// <summary>Cancels a shard's part without waiting (a one-way call; a silo gone keeps it until it expires).</summary>
    private void Cancel(string key, Guid ticket)
    {
        try
        {
            _ = Grain(key).CancelQuery(ticket);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Expires by itself (Cluster:QueryResultSeconds).
        }
    }

    /// <summary>Rebuilds a shard's partial tree (reading the pieces after the first) and merges it into <paramref name="destination"/>.</summary>
    private async Task MergePartial(string key, ShardQueryReply reply, ProfileTree destination, CancellationToken aborted)
    {
        var bytes = new MemoryStream(checked((int)reply.TreeLength));
        bytes.Write(reply.Tree);
        while (bytes.Length < reply.TreeLength)
        {
            byte[] chunk;
            try
            {
                chunk = await Grain(key).ReadChunk(reply.More, bytes.Length).WaitAsync(aborted);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new StorageUnavailableException($"shard {key} could not send the rest of its partial result ({e.Message})", e);
            }
            if (chunk.Length == 0) throw new StorageUnavailableException($"shard {key} sent an empty piece of its partial result");
            bytes.Write(chunk);
        }
        bytes.Position = 0;
        using TreeStore partial = TreeStore.Load(bytes, new TreeStoreOptions { MaxNodes = cluster.MaxPartialNodes, MaxNativeBytes = cluster.MaxPartialNativeBytes });
        ProfileTree[] trees = partial.GetTrees();
        if (trees.Length != 1) throw new StorageUnavailableException($"shard {key} sent a partial result with {trees.Length} trees, 1 expected");
        destination.MergeFrom(trees[0]);
    }

    /// <summary>Blocks on <see cref="QueryAsync"/> (a thread waits for the grains): the HTTP layer calls the async form.</summary>
    public QueryResult Query(string tenant, SeriesSelector selector, long fromSeconds, long untilSeconds, ProfileTree destination, long timelineStepSeconds = 0) =>
        QueryAsync(tenant, selector, fromSeconds, untilSeconds, destination, timelineStepSeconds).AsTask().GetAwaiter().GetResult();

    public async ValueTask<IReadOnlyList<SeriesKey>> SeriesAsync(string tenant, SeriesSelector? selector, long fromSeconds, long untilSeconds)
    {
        ThrowIfNotReady();
        var query = new ShardSeriesQuery(selector?.Name, WireCodec.Matchers(selector), fromSeconds, untilSeconds, NowSeconds());
        int[] numbers = ShardNumbers(tenant);
        ShardSeriesReply[] replies = await Fan(numbers, n => Grain(ShardGrainKey.For(tenant, n)).Series(query));
        for (int i = 0; i < replies.Length; i++) WireCodec.ThrowIfFailed(replies[i].Outcome, ShardGrainKey.For(tenant, numbers[i]));
        var found = new HashSet<SeriesKey>(replies.SelectMany(r => r.Series).Select(s => WireCodec.Key(tenant, s)));
        return [.. found.OrderBy(k => k.Canonical, StringComparer.Ordinal)];
    }

    /// <inheritdoc cref="Query"/>
    public IReadOnlyList<SeriesKey> Series(string tenant, SeriesSelector? selector, long fromSeconds, long untilSeconds) =>
        SeriesAsync(tenant, selector, fromSeconds, untilSeconds).AsTask().GetAwaiter().GetResult();

    /// <summary>This silo's shards only (each silo's /metrics shows its own; a cluster total is their sum).</summary>
    public StorageStats Stats() => local.Stats();

    /// <summary>
    /// The shard numbers a query asks: 0 … ShardCount − 1, plus any other shard directory of the tenant (written
    /// under an earlier, larger ShardCount), as the single node reads every shard it finds. A grain whose shard
    /// has no directory answers empty without creating one.
    /// </summary>
    private int[] ShardNumbers(string tenant)
    {
        var numbers = new SortedSet<int>(Enumerable.Range(0, options.ShardCount));
        numbers.UnionWith(local.Media.ExistingShardNumbers(tenant));
        return [.. numbers];
    }

    /// <summary>Asks every shard at once (series lookups: one short call each); a shard that fails or does not answer
    /// within the call timeout fails the lookup with 503 (a partial answer is never passed off as the whole one).</summary>
    private static async Task<T[]> Fan<T>(int[] numbers, Func<int, Task<T>> ask)
    {
        Task<T>[] calls = [.. numbers.Select(ask)];
        try
        {
            return await Task.WhenAll(calls);
        }
        catch (Exception e) when (e is not StorageUnavailableException)
        {
            throw new StorageUnavailableException($"a shard did not answer the query: {e.Message}", e);
        }
    }

    private IShardGrain Grain(string key) => grains.GetGrain<IShardGrain>(key);

    private long NowSeconds() => time.GetUtcNow().ToUnixTimeSeconds();

    private void ThrowIfNotReady()
    {
        if (!_ready) throw new StorageUnavailableException("this silo has not joined the cluster yet (or is leaving it)");
    }
}
