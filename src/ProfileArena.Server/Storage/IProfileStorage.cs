namespace ProfileArena.Server.Storage;

/// <summary>One profile of one series to store: stacks and values observed over [From, Until).</summary>
/// <param name="Series">The series it belongs to (tenant included).</param>
/// <param name="FromSeconds">Start, unix seconds; the profile is stored in the 10 s bucket that holds it.</param>
/// <param name="UntilSeconds">End, unix seconds (≥ <paramref name="FromSeconds"/>).</param>
/// <param name="Metadata">The client's declaration of spy, rate, units and aggregation.</param>
/// <param name="Stacks">The stacks, root first, with their values.</param>
public sealed record IngestProfile(SeriesKey Series, long FromSeconds, long UntilSeconds, SeriesMetadata Metadata, StackBatch Stacks);

/// <summary>Samples over time for a query: one sum per step, as pyroscope's <c>timeline</c>.</summary>
/// <param name="StartTime">Unix seconds of the first step.</param>
/// <param name="DurationDelta">Seconds per step.</param>
/// <param name="Samples">Sum of all values in each step.</param>
public sealed record Timeline(long StartTime, long DurationDelta, long[] Samples);

/// <summary>What a query found besides the merged tree.</summary>
/// <param name="Series">Matching series that had data in the range.</param>
/// <param name="Metadata">The metadata of the matching series (the first one's; default when none).</param>
/// <param name="Timeline">Samples over time across all matching series.</param>
public sealed record QueryResult(int Series, SeriesMetadata Metadata, Timeline Timeline)
{
    /// <summary>Stored trees merged into the destination (one per series and bucket piece): O(log range).</summary>
    public int TreesMerged { get; init; }

    /// <summary>Where the storage's time went (single node); null from a cluster's fan-out.</summary>
    public QueryTiming? Timing { get; init; }

    /// <summary>The destination holds the sum already truncated to the query's maxNodes
    /// (<see cref="IProfileStorage.QueryTruncatedAsync"/>); false: the whole sum, for the caller to cut.</summary>
    public bool Truncated { get; init; }
}

/// <summary>Storage refused a write for lack of room (native-memory budget): the client may retry later (HTTP 429).</summary>
public sealed class StorageFullException(string message) : Exception(message);

/// <summary>Storage could not make a write durable (disk full, I/O error): nothing was stored (HTTP 503).</summary>
public class StorageUnavailableException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The Retry-After the HTTP layer sends (seconds): 30 by default, less for a short wait (a shard loading).</summary>
    public int RetryAfterSeconds { get; init; } = 30;
}

/// <summary>A write's outcome is unknown: it was sent to the shard that owns it, and no answer came back (a cluster's
/// call timed out, its silo went away) or only some shards of a write spanning several answered that they committed.
/// It may be stored, wholly or in part. HTTP 504: a client that retries may store it twice, one that does not may lose
/// it — unlike 503, which means nothing was stored.</summary>
public sealed class StorageOutcomeUnknownException(string message, Exception? inner = null) : StorageUnavailableException(message, inner);

/// <summary>
/// The server's storage: series of profile trees in time buckets, durable through a write-ahead log.
/// The HTTP layer talks only to this interface; implementations own sharding, buckets, levels,
/// retention, WAL and snapshots. Every method is safe to call concurrently with every other.
/// </summary>
public interface IProfileStorage
{
    /// <summary>True once the WAL has been replayed and writes and queries are served.</summary>
    bool IsReady { get; }

    /// <summary>Stores <paramref name="profiles"/>, all or nothing; the task completes only after the
    /// write is durable (fsynced WAL). Profiles may name different tenants and series.</summary>
    /// <exception cref="StorageFullException">The native-memory budget is reached; nothing was stored.</exception>
    /// <exception cref="StorageUnavailableException">The WAL could not be written, or storage is replaying or
    /// stopped; nothing was stored.</exception>
    /// <exception cref="OverflowException">A bucket's total would pass 2^64 − 1 (client values too large); nothing was stored.</exception>
    /// <exception cref="ArgumentException">A profile's until is before its from; nothing was stored.</exception>
    ValueTask IngestAsync(IReadOnlyList<IngestProfile> profiles, CancellationToken cancellationToken);

    /// <summary>Merges into <paramref name="destination"/> every profile of <paramref name="tenant"/>'s
    /// series matching <paramref name="selector"/> with a bucket in [<paramref name="fromSeconds"/>,
    /// <paramref name="untilSeconds"/>); <paramref name="timelineStepSeconds"/> (0 = chosen from the range)
    /// sets the timeline's resolution.</summary>
    QueryResult Query(string tenant, SeriesSelector selector, long fromSeconds, long untilSeconds, ProfileTree destination, long timelineStepSeconds = 0);

    /// <summary>The series of <paramref name="tenant"/> matching <paramref name="selector"/> (null: all)
    /// that have data in [from, until).</summary>
    IReadOnlyList<SeriesKey> Series(string tenant, SeriesSelector? selector, long fromSeconds, long untilSeconds);

    /// <summary>Counts for /metrics: series, trees, nodes, native bytes, WAL bytes.</summary>
    StorageStats Stats();

    /// <summary><see cref="Query"/> for storage whose shards answer asynchronously (a cluster's shard grains);
    /// the HTTP layer calls this one. The single node answers on the caller's thread. A cancelled
    /// <c>cancellationToken</c> (the client went away) stops a cluster's shard work still running for the query;
    /// the single node's merge on the caller's thread does not look at it.</summary>
    ValueTask<QueryResult> QueryAsync(string tenant, SeriesSelector selector, long fromSeconds, long untilSeconds, ProfileTree destination, long timelineStepSeconds = 0, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Query(tenant, selector, fromSeconds, untilSeconds, destination, timelineStepSeconds));

    /// <summary>
    /// <see cref="QueryAsync"/> for an answer that keeps only <paramref name="maxNodes"/> nodes (a flame graph): storage
    /// that can may fill <paramref name="destination"/> with the sum already truncated as
    /// <see cref="ProfileTree.Truncate(long)"/> would cut it, without building the whole sum, and says so in
    /// <see cref="QueryResult.Truncated"/>. By default (a cluster) the whole sum, not truncated.
    /// </summary>
    ValueTask<QueryResult> QueryTruncatedAsync(string tenant, SeriesSelector selector, long fromSeconds, long untilSeconds, ProfileTree destination, long maxNodes, CancellationToken cancellationToken = default) =>
        QueryAsync(tenant, selector, fromSeconds, untilSeconds, destination, cancellationToken: cancellationToken);

    /// <summary><see cref="Series"/>, asynchronously (see <see cref="QueryAsync"/>).</summary>
    ValueTask<IReadOnlyList<SeriesKey>> SeriesAsync(string tenant, SeriesSelector? selector, long fromSeconds, long untilSeconds) =>
        ValueTask.FromResult(Series(tenant, selector, fromSeconds, untilSeconds));
}

/// <summary>Storage-wide counts at one instant.</summary>
public sealed record StorageStats(long Series, long Trees, long Nodes, long NativeBytes, long WalBytes, long Shards)
{
    /// <summary>Bytes counted against <c>Storage:MaxNativeBytes</c>: the native bytes (arena), an estimate of the
    /// trees' managed bytes (Baseline: nodes × bytes per node).</summary>
    public long BudgetBytes { get; init; }

    /// <summary>Seconds the shards' loops spent applying acknowledged groups to memory since start (ingest's merges into every level).</summary>
    public double ApplySeconds { get; init; }

    /// <summary>WAL records written since start (one per ingest call and shard, plus commits).</summary>
    public long WalRecords { get; init; }

    /// <summary>Group fsyncs since start: fewer than <see cref="WalRecords"/> when concurrent calls share them.</summary>
    public long WalSyncs { get; init; }

    /// <summary>Stored trees merged by queries since start (O(log range) per series and query).</summary>
    public long QueryTreesMerged { get; init; }

    /// <summary>Shard compactions since start (a shard's live trees copied into a fresh store to drop the names of
    /// removed trees; native-notes.md, "Server storage").</summary>
    public long Compactions { get; init; }

    /// <summary>Native bytes those compactions gave back (each: the old store's bytes − the new store's).</summary>
    public long CompactionReclaimedBytes { get; init; }

    /// <summary>Compactions skipped because the shard's copy would not fit <c>Storage:MaxNativeBytes</c>.</summary>
    public long CompactionsSkipped { get; init; }

    /// <summary>The query merge cache (<c>Storage:MergeCacheBytes</c>): native bytes and entries now; groups of queries
    /// served from an unchanged entry, from an entry extended with new trees, from a rebuilt (new or invalid) entry;
    /// entries evicted. All 0 when the cache is off.</summary>
    public (long Bytes, int Entries, long Hits, long Extended, long Rebuilt, long Evicted) MergeCache { get; init; }
}
