using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ProfileArena.Server.Storage.Cache;
using ProfileArena.Server.Storage.Media;
using ProfileArena.Server.Storage.Shards;

namespace ProfileArena.Server.Storage;

/// <summary>
/// The server's storage (native-notes.md, "Server storage"): per tenant, <see cref="StorageOptions.ShardCount"/>
/// shards; a series lives in shard hash(app, labels) mod N of its tenant, so the sample types of one upload
/// (<c>app.cpu</c>, <c>app.alloc_space</c>, same labels) share a shard and one ingest call usually touches one shard.
/// Created empty and not ready; <see cref="OpenAsync"/> replays the data directory.
/// </summary>
public sealed class ProfileStorage : IProfileStorage, IDisposable
{
    private readonly StorageOptions _options;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _logs;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<string, TenantShards> _tenants = new(StringComparer.Ordinal);
    private readonly object _createLock = new();
    private readonly NativeBudget _budget;
    private readonly ShardMedia _media;
    private readonly MergeCache? _cache;
    private volatile bool _ready;
    private volatile bool _stopped;

    public ProfileStorage(StorageOptions options, TimeProvider? time = null, ILoggerFactory? logs = null)
    {
        options.Validate();
        _options = options;
        _time = time ?? TimeProvider.System;
        _logs = logs ?? NullLoggerFactory.Instance;
        _log = _logs.CreateLogger<ProfileStorage>();
        _cache = options.MergeCacheBytes > 0 ? new MergeCache(options.MergeCacheBytes) : null;
        _budget = new NativeBudget(options.MaxNativeBytes, () => BudgetBytes, _cache == null ? null : _cache.Reclaim);
        _media = ShardMedia.Create(options);
    }

    /// <inheritdoc/>
    public bool IsReady => _ready && !_stopped;

    /// <summary>The options in use.</summary>
    public StorageOptions Options => _options;

    /// <summary>Trees merged by all queries so far: a query merges O(log range) trees (a test checks it).</summary>
    public long TreesMergedByQueries => AllShards.Sum(s => s.TreesMergedByQueries);

    /// <summary>WAL records written and group fsyncs since start, over all shards: concurrent calls share fsyncs.</summary>
    public (long Records, long Syncs) WalWrites
    {
        get
        {
            long records = 0, syncs = 0;
            foreach (Shard s in AllShards)
            {
                var (r, y) = s.WalWrites;
                records += r;
                syncs += y;
            }
            return (records, syncs);
        }
    }

    /// <summary>Every shard of every tenant.</summary>
    private IEnumerable<Shard> AllShards => _tenants.Values.SelectMany(t => t.All);

    /// <summary>Tests: callers waiting on the shards' apply stages now (queries waiting for acknowledged writes, a writer
    /// draining before a snapshot or stop, or held back by the backlog bound), and times a writer was held back.</summary>
    internal (int Waiters, long BacklogWaits) ApplyStages =>
        (AllShards.Sum(s => s.ApplyWaiters), AllShards.Sum(s => s.BacklogWaits));

    /// <summary>Loads every tenant's shards from <see cref="StorageOptions.DataDir"/> (newest snapshot + WAL after
    /// it, torn tails cut), then marks the storage ready.</summary>
    /// <exception cref="InvalidDataException">A snapshot, index or WAL is corrupt; the message names file and byte offset.</exception>
    public async Task OpenAsync(CancellationToken cancellationToken = default)
    {
        List<(string Tenant, int Number)> work = _media.ExistingShards();
        var opened = new ConcurrentBag<Shard>();
        try
        {
            await Parallel.ForEachAsync(work, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount), CancellationToken = cancellationToken }, (w, _) =>
            {
                opened.Add(OpenShard(w.Tenant, w.Number));
                return ValueTask.CompletedTask;
            }).ConfigureAwait(false);
        }
        catch
        {
            foreach (Shard s in opened) s.Dispose();
            throw;
        }
        foreach (Shard s in opened) Tenant(s.Tenant).Add(s);
        _ready = true;
        _log.LogInformation("Storage ready: {Shards} shards of {Tenants} tenants in {Dir} ({Medium})", opened.Count, _tenants.Count, Path.GetFullPath(_options.DataDir), _options.Medium);
    }

    /// <inheritdoc/>
    public async ValueTask IngestAsync(IReadOnlyList<IngestProfile> profiles, CancellationToken cancellationToken)
    {
        ThrowIfNotReady();
        ValidateProfiles(profiles);
        var parts = new Dictionary<Shard, List<IngestProfile>>();
        foreach (IngestProfile p in profiles)
        {
            Shard shard = ShardFor(p.Series);
            if (!parts.TryGetValue(shard, out List<IngestProfile>? list)) parts.Add(shard, list = []);
            list.Add(p);
        }
        if (parts.Count == 0) return;
        // No cancellation once queued: a write that may already be durable is waited for, never abandoned.
        if (parts.Count == 1)
        {
            var (shard, list) = parts.First();
            await shard.Enqueue(Shard.WorkKind.Ingest, list, 0).ConfigureAwait(false);
            return;
        }
        // Spanning shards: prepare everywhere (durable, not applied), then commit everywhere; a refusal anywhere
        // aborts the prepared parts, which replay then drops as well.
        long txn = Random.Shared.NextInt64(1, long.MaxValue);
        var prepared = parts.Select(kv => (Shard: kv.Key, Task: kv.Key.Enqueue(Shard.WorkKind.Prepare, kv.Value, txn))).ToList();
        try
        {
            await Task.WhenAll(prepared.Select(p => p.Task)).ConfigureAwait(false);
        }
        catch
        {
            foreach (var p in prepared.Where(p => p.Task.IsCompletedSuccessfully)) _ = p.Shard.Enqueue(Shard.WorkKind.Abort, null, txn);
            Exception first = prepared.Select(p => p.Task.Exception?.InnerException).First(e => e != null)!;
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
        }
        var commits = prepared.Select(p => p.Shard.Enqueue(Shard.WorkKind.Commit, null, txn)).ToList();
        try
        {
            await Task.WhenAll(commits).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw new StorageUnavailableException($"a write spanning {parts.Count} shards was committed in some shards only ({e.Message}); its profiles may be partly stored", e);
        }
    }

    /// <inheritdoc/>
    public QueryResult Query(string tenant, SeriesSelector selector, long fromSeconds, long untilSeconds, ProfileTree destination, long timelineStepSeconds = 0) =>
        Query(tenant, selector, fromSeconds, untilSeconds, destination, timelineStepSeconds, maxNodes: 0);

    /// <inheritdoc/>
    /// <remarks>Through the merge cache, the sum is truncated as it is taken from the entries
    /// (<see cref="MergeCache.Merge"/>); without the cache (or after three raced attempts) the whole sum, not truncated.</remarks>
    public ValueTask<QueryResult> QueryTruncatedAsync(string tenant, SeriesSelector selector, long fromSeconds, long untilSeconds, ProfileTree destination, long maxNodes, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Query(tenant, selector, fromSeconds, untilSeconds, destination, 0, maxNodes));

    private QueryResult Query(string tenant, SeriesSelector selector, long fromSeconds, long untilSeconds, ProfileTree destination, long timelineStepSeconds, long maxNodes)
    {
        ThrowIfNotReady();
        Shard[] shards = _tenants.TryGetValue(tenant, out TenantShards? t) ? t.All : [];
        var (from, step, pieces, stepPieces) = PlanQuery(_options, NowSeconds(), fromSeconds, untilSeconds, timelineStepSeconds);
        using StepPieces pooled = stepPieces; // its arrays go back to the pool when the query is done
        var samples = new long[stepPieces.Length];
        var matched = new List<(SeriesKey Key, SeriesMetadata Metadata)>();
        var timing = new QueryTiming();
        if (_cache != null && shards.Length > 0 && destination.NodeCount == 1 && destination.Total == 0)
        {
            // Through the merge cache (an empty destination only: a refused attempt clears it). A tree removed or a
            // backend swapped between collecting and merging makes the attempt collect again; after three, the
            // uncached path below merges as before.
            var components = new List<MergeComponent>();
            string selectorKey = SelectorKey(selector);
            var (_, normalizedUntil) = BucketMath.Normalize(fromSeconds, untilSeconds);
            for (int attempt = 0; attempt < 3; attempt++)
            {
                components.Clear();
                matched.Clear();
                Array.Clear(samples);
                foreach (Shard shard in shards) shard.Collect(selector, pieces, stepPieces, samples, matched, components, timing);
                int cached = _cache.Merge(tenant, selectorKey, normalizedUntil, pieces, components, destination, CacheRoom, timing, maxNodes);
                // TreesMerged stays the stored trees the answer covers (as uncached, and as a cluster's fan-out reports).
                if (cached >= 0) return QueryResultOf(from, step, samples, matched, components.Count) with { Timing = timing, Truncated = maxNodes > 0 };
                destination.Clear();
            }
            matched.Clear();
            Array.Clear(samples);
        }
        int merged = 0;
        foreach (Shard shard in shards) merged += shard.Query(selector, pieces, stepPieces, destination, samples, matched, timing);
        return QueryResultOf(from, step, samples, matched, merged) with { Timing = timing };
    }

    /// <summary>A selector as a cache key: every part length-prefixed, so no two selectors share a key.</summary>
    private static string SelectorKey(SeriesSelector selector)
    {
        var key = new StringBuilder();
        key.Append(selector.Name.Length).Append(':').Append(selector.Name);
        foreach (LabelMatcher m in selector.Matchers)
            key.Append('|').Append(m.Name.Length).Append(':').Append(m.Name).Append((int)m.Op).Append(m.Value.Length).Append(':').Append(m.Value);
        return key.ToString();
    }

    /// <summary>What the merge cache may hold: without a budget, its own limit; with one, also no more than the
    /// admission line leaves beside the shards' bytes and the reservations of writes admitted but not yet applied
    /// (those bytes are the shards' soon: counted now, the cache and the stores stay under the line once they apply).</summary>
    private long CacheRoom() => _budget.Limit <= 0 ? long.MaxValue : Math.Max(0, _budget.AdmissionLimit - ShardBudgetBytes - _budget.Reserved);

    /// <summary>The merge cache's figures (entries, hits, extensions, rebuilds, evictions, bytes); zeros when it is off.</summary>
    public (int Entries, long Hits, long Extended, long Rebuilt, long Evicted, long Bytes) MergeCacheCounters
    {
        get
        {
            if (_cache == null) return default;
            var (entries, hits, extended, rebuilt, evicted) = _cache.Counters;
            return (entries, hits, extended, rebuilt, evicted, _cache.Bytes);
        }
    }

    /// <summary>Profiles a write may not hold (until before from, from outside [0, 10^10] s): the same refusal for
    /// the single node and the cluster (<c>Cluster/ClusterProfileStorage</c>).</summary>
    /// <exception cref="ArgumentException">The first such profile, named.</exception>
    internal static void ValidateProfiles(IReadOnlyList<IngestProfile> profiles)
    {
        foreach (IngestProfile p in profiles)
        {
            if (p.UntilSeconds < p.FromSeconds) throw new ArgumentException($"profile of {p.Series}: until ({p.UntilSeconds}) is before from ({p.FromSeconds})");
            if (p.FromSeconds is < 0 or > BucketMath.MaxTime)
                throw new ArgumentException($"profile of {p.Series}: from ({p.FromSeconds}) must be unix seconds between 0 and {BucketMath.MaxTime}");
        }
    }

    /// <summary>A query's timeline: the normalised range, its step (pyroscope's for the range, or the caller's rounded up to
    /// 10 s; coarser when the range would pass 100,000 steps) and how many steps it has.</summary>
    internal static (long From, long Until, long Step, int Steps) Timeline(long fromSeconds, long untilSeconds, long timelineStepSeconds)
    {
        var (from, until) = BucketMath.Normalize(fromSeconds, untilSeconds);
        long step = timelineStepSeconds <= 0 ? BucketMath.DefaultStep(from, until) : (timelineStepSeconds + 9) / 10 * 10;
        long steps = (until - from + step - 1) / step;
        if (steps > 100_000)
        {
            step = (until - from + 99_999) / 100_000;
            step = (step + 9) / 10 * 10;
            steps = (until - from + step - 1) / step;
        }
        return (from, until, step, (int)steps);
    }

    /// <summary>What a query reads, the same in every shard (and every shard grain, given the same
    /// <paramref name="now"/>): the normalised start, the timeline step, the bucket pieces covering the range and
    /// the pieces of each timeline step.</summary>
    internal static (long From, long Step, List<(int Level, long Start)> Pieces, StepPieces StepPieces) PlanQuery(
        StorageOptions options, long now, long fromSeconds, long untilSeconds, long timelineStepSeconds)
    {
        var (from, until, step, steps) = Timeline(fromSeconds, untilSeconds, timelineStepSeconds);
        Func<int, long> firstRetained = level => FirstRetained(options, level, now);
        List<(int, long)> pieces = BucketMath.Decompose(from, until, options.Levels, firstRetained);
        var stepPieces = new StepPieces(steps);
        var mine = new List<(int, long)>();
        (int, long) lastCounted = (-1, 0);
        for (int i = 0; i < steps; i++)
        {
            long s = from + i * step;
            mine.Clear();
            BucketMath.Decompose(s, Math.Min(s + step, until), options.Levels, firstRetained, mine);
            // A coarse bucket standing in for expired fine ones counts once, in the first step that reaches it.
            // Steps and the pieces within a step go forward in time, and Decompose never repeats a piece within a
            // step, so a bucket seen again can only be this step's first piece and the one counted last (it covers
            // one stretch of time: nothing else can start inside it before it recurs); comparing with that one piece
            // replaces a set of every piece, which a day at 10 s steps made a 200 KB Large Object Heap allocation per query.
            int skip = mine.Count > 0 && mine[0] == lastCounted ? 1 : 0;
            if (mine.Count > skip) lastCounted = mine[^1];
            stepPieces.AddStep(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(mine)[skip..]);
        }
        return (from, step, pieces, stepPieces);
    }

    /// <summary>A query's result from what its shards found: series counted once, metadata of the first matching
    /// series in canonical order.</summary>
    internal static QueryResult QueryResultOf(long from, long step, long[] samples, List<(SeriesKey Key, SeriesMetadata Metadata)> matched, int merged)
    {
        int series = matched.Select(m => m.Key).Distinct().Count();
        SeriesMetadata metadata = matched.Count == 0 ? SeriesMetadata.Default : matched.MinBy(m => m.Key.Canonical, StringComparer.Ordinal).Metadata;
        return new QueryResult(series, metadata, new Timeline(from, step, samples)) { TreesMerged = merged };
    }

    /// <inheritdoc/>
    public IReadOnlyList<SeriesKey> Series(string tenant, SeriesSelector? selector, long fromSeconds, long untilSeconds)
    {
        ThrowIfNotReady();
        if (!_tenants.TryGetValue(tenant, out TenantShards? t)) return [];
        List<(int, long)> pieces = PlanSeries(_options, NowSeconds(), fromSeconds, untilSeconds);
        var found = new HashSet<SeriesKey>();
        foreach (Shard shard in t.All) shard.Series(selector, pieces, found);
        return [.. found.OrderBy(k => k.Canonical, StringComparer.Ordinal)];
    }

    /// <inheritdoc/>
    public StorageStats Stats()
    {
        StorageStats shards = ShardStats.Sum(AllShards);
        if (_cache == null) return shards;
        var (entries, hits, extended, rebuilt, evicted, bytes) = MergeCacheCounters;
        // NativeBytes stays the shards' stores; the cache's bytes are counted against the budget beside them.
        return shards with { BudgetBytes = shards.BudgetBytes + bytes, MergeCache = (bytes, entries, hits, extended, rebuilt, evicted) };
    }

    /// <summary>Native bytes held by all shards.</summary>
    public long NativeBytes => AllShards.Sum(s => s.NativeBytes);

    /// <summary>Bytes counted against Storage:MaxNativeBytes: every shard's (native bytes; Baseline: estimated managed
    /// bytes) and the merge cache's native bytes.</summary>
    public long BudgetBytes => ShardBudgetBytes + (_cache?.Bytes ?? 0);

    private long ShardBudgetBytes => AllShards.Sum(s => s.BudgetBytes);

    /// <summary>Bytes reserved against the budget by writes admitted and not yet applied (0 without a budget).</summary>
    internal long BudgetReservedBytes => _budget.Reserved;

    /// <summary>Where the budget stops admitting writes (15/16 of Storage:MaxNativeBytes; 0 without a budget).</summary>
    internal long BudgetAdmissionLimit => _budget.Limit <= 0 ? 0 : _budget.AdmissionLimit;

    /// <summary>Snapshots every shard with records since its last snapshot (retiring its WAL).</summary>
    public Task SnapshotAsync() => Task.WhenAll(AllShards.Select(s => s.Enqueue(Shard.WorkKind.Snapshot, null, 0)));

    /// <summary>Compacts every arena shard now, whatever its trigger says (tests; an operator's tool): live trees are
    /// copied into a fresh store that holds only their names. Skipped (and counted) in a shard whose copy does not fit
    /// the budget; nothing to do for Baseline shards.</summary>
    public Task CompactAsync() => Task.WhenAll(AllShards.Select(s => s.Enqueue(Shard.WorkKind.Compact, null, 0)));

    /// <summary>Removes every bucket past its level's retention, then compacts shards whose names outgrew their live
    /// trees (<see cref="StorageOptions.CompactionFactor"/>).</summary>
    public Task RemoveExpiredAsync() => Task.WhenAll(AllShards.Select(s => s.Enqueue(Shard.WorkKind.Retention, null, 0)));

    /// <summary>Finishes queued writes, snapshots every shard (when <paramref name="snapshot"/>) and stops; later calls throw.</summary>
    public async Task StopAsync(bool snapshot = true)
    {
        if (!_ready || _stopped) return;
        _stopped = true;
        await Task.WhenAll(AllShards.Select(s => s.StopAsync(snapshot))).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _stopped = true;
        foreach (Shard s in AllShards) s.Dispose();
        _tenants.Clear();
        _cache?.Dispose();
    }

    internal long NowSeconds() => _time.GetUtcNow().ToUnixTimeSeconds();

    /// <summary>The bucket pieces a series lookup (<see cref="Series"/>) reads in [from, until).</summary>
    internal static List<(int Level, long Start)> PlanSeries(StorageOptions options, long now, long fromSeconds, long untilSeconds)
    {
        var (from, until) = BucketMath.Normalize(fromSeconds, untilSeconds);
        return BucketMath.Decompose(from, until, options.Levels, level => FirstRetained(options, level, now));
    }

    private static long FirstRetained(StorageOptions options, int level, long now)
    {
        long retention = options.RetentionOf(level);
        return retention == 0 ? long.MinValue : BucketMath.Floor(now - retention, level);
    }

    private void ThrowIfNotReady()
    {
        if (_stopped) throw new StorageUnavailableException("storage is stopped");
        if (!_ready) throw new StorageUnavailableException("storage is still replaying its write-ahead log");
    }

    /// <summary>The shard number of <paramref name="key"/>: XxHash64 of the app name (the profile name up to
    /// its last '.') and the labels, so every sample type of one upload lands in the same shard.</summary>
    internal static int ShardNumber(SeriesKey key, int shardCount)
    {
        int dot = key.Name.LastIndexOf('.');
        string app = dot < 0 ? key.Name : key.Name[..dot];
        string labels = key.Canonical[key.Name.Length..];
        ulong hash = XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(app + "\n" + labels));
        return (int)(hash % (ulong)shardCount);
    }

    private Shard ShardFor(SeriesKey key)
    {
        int number = ShardNumber(key, _options.ShardCount);
        TenantShards tenant = Tenant(key.Tenant);
        Shard? shard = tenant.Get(number);
        if (shard != null) return shard;
        lock (_createLock)
        {
            shard = tenant.Get(number);
            if (shard != null) return shard;
            shard = CreateShard(_media, _options, key.Tenant, number, NowSeconds, _budget, _logs);
            tenant.Add(shard);
            return shard;
        }
    }

    /// <summary>Opens shard <paramref name="number"/> of <paramref name="tenant"/> on <paramref name="media"/>, recording the
    /// tenant's name first when it is new: the one place a shard comes to life, for the single node
    /// (<see cref="ShardFor"/>) and for a shard grain (<c>Cluster/ShardGrain</c>).</summary>
    internal static Shard CreateShard(ShardMedia media, StorageOptions options, string tenant, int number, Func<long> now, NativeBudget budget, ILoggerFactory logs)
    {
        media.EnsureTenant(tenant);
        return OpenShard(media, options, tenant, number, now, budget, logs);
    }

    private Shard OpenShard(string tenant, int number) => OpenShard(_media, _options, tenant, number, NowSeconds, _budget, _logs);

    /// <summary>Opens (takes ownership of, then recovers) an existing shard; see <see cref="CreateShard"/> for a new one.</summary>
    internal static Shard OpenShard(ShardMedia media, StorageOptions options, string tenant, int number, Func<long> now, NativeBudget budget, ILoggerFactory logs) =>
        Shard.Open(tenant, number, media.Open(tenant, number), options, now, budget, logs.CreateLogger("ProfileArena.Server.Storage.Shard"));

    private TenantShards Tenant(string tenant) => _tenants.GetOrAdd(tenant, _ => new TenantShards());

    /// <summary>One tenant's shards by number (copy-on-write array for lock-free reads).</summary>
    private sealed class TenantShards
    {
        private volatile Shard[] _all = [];

        public Shard[] All => _all;

        public Shard? Get(int number) => Array.Find(_all, s => s.Number == number);

        public void Add(Shard shard)
        {
            lock (this) _all = [.. _all, shard];
        }
    }
}
