using Orleans.Concurrency;

namespace ProfileArena.Server.Cluster;

/// <summary>
/// One shard of one tenant as an Orleans grain, keyed <c>tenant/shard-N</c> (<see cref="ShardGrainKey"/>): N is
/// the shard number the single server draws (<c>ProfileStorage.ShardNumber</c>). The grain owns the shard's
/// trees, WAL and snapshots (<see cref="ShardGrain"/>). Replies carry outcomes rather than exceptions, so a
/// refusal (budget, overflow) reaches the receiving silo as the same exception type the single node throws.
/// </summary>
public interface IShardGrain : IGrainWithStringKey
{
    /// <summary>Adds one chunk of a write payload too large for one message (<see cref="ShardWrite.Upload"/>).</summary>
    Task StageChunk(Guid upload, byte[] chunk);

    /// <summary>Logs and applies an Ingest (one call, one shard) or a Prepare (one part of a call spanning shards);
    /// answers once the WAL record is durable (and, for Ingest, applied).</summary>
    Task<ShardOutcome> Write(ShardWrite write);

    /// <summary>Commits a prepared part: durable, then applied.</summary>
    Task<ShardOutcome> Commit(long txn);

    /// <summary>Drops a prepared part (in memory; replay drops prepares without commit as well).</summary>
    Task Abort(long txn);

    /// <summary>Starts this shard's part of a query in the background and answers its ticket at once (README
    /// "Running a cluster": long queries). Interleaves with everything: the shard's own locks let it run beside a write.</summary>
    [AlwaysInterleave]
    Task<Guid> StartQuery(ShardQuery query);

    /// <summary>The part's reply once done — its partial tree (serialized), timeline and matching series — waiting
    /// for it a bounded time (well under the call timeout); null: not yet, ask again. A ticket the grain does not
    /// know (expired, cancelled, the shard reactivated) answers an Unavailable outcome.</summary>
    [AlwaysInterleave]
    Task<ShardQueryReply?> TakeQuery(Guid ticket);

    /// <summary>The next piece of a taken partial tree too large for one message (<see cref="ShardQueryReply.More"/>).</summary>
    [AlwaysInterleave]
    Task<byte[]> ReadChunk(Guid ticket, long offset);

    /// <summary>Stops a part nobody will collect (the client went away, the query's deadline passed, another shard
    /// failed) and releases what it holds.</summary>
    [AlwaysInterleave, OneWay]
    Task CancelQuery(Guid ticket);

    /// <summary>Where this shard runs and the bytes it counts against that silo's budget (0 before its first write).</summary>
    [AlwaysInterleave]
    Task<ShardPlace> Locate();

    /// <summary>Starts moving this shard to <paramref name="target"/> (Orleans migration: deactivation with a snapshot
    /// here, activation there from the shared medium). False, and nothing happens, while a call spanning messages is
    /// half done here (a prepared part without its commit, a staged payload, a query part running or not yet collected)
    /// or the shard is still loading: those live in this activation's memory only. The rebalancer (<c>ShardRebalancer</c>) tries again at its next period.</summary>
    Task<bool> MoveTo(SiloAddress target);

    /// <summary>The shard's series matching the selector (null: all) with data in [from, until).</summary>
    [AlwaysInterleave]
    Task<ShardSeriesReply> Series(ShardSeriesQuery query);
}

/// <summary>How a shard grain call ended: the single node's exception types, as codes.</summary>
public enum ShardOutcomeKind
{
    /// <summary>Done.</summary>
    Ok,
    /// <summary><c>StorageFullException</c>: the silo's native budget (HTTP 429).</summary>
    Full,
    /// <summary><c>StorageUnavailableException</c>: the WAL could not be written, the shard is stopped (HTTP 503).</summary>
    Unavailable,
    /// <summary><c>OverflowException</c>: a bucket total would pass 2^64 − 1 (HTTP 400).</summary>
    Overflow,
    /// <summary><c>ArgumentException</c>: an invalid profile (HTTP 400).</summary>
    Invalid,
    /// <summary><c>StoreLimitExceededException</c>: a query's partial tree passed the query caps (HTTP 413).</summary>
    QueryLimit,
    /// <summary><see cref="ShardLoadingException"/>: the shard is still loading after the bounded wait (HTTP 503, Retry-After).</summary>
    Loading,
}

/// <summary>The outcome of a write call.</summary>
[GenerateSerializer, Immutable]
public sealed record ShardOutcome([property: Id(0)] ShardOutcomeKind Kind, [property: Id(1)] string? Message)
{
    /// <summary>Success.</summary>
    public static ShardOutcome Ok { get; } = new(ShardOutcomeKind.Ok, null);
}

/// <summary>A write: the shard's part of an ingest call as its WAL payload (<c>WalPayload</c>: the format the shard logs).</summary>
/// <param name="Prepare">False: Ingest (applied at once). True: Prepare of transaction <paramref name="Txn"/>.</param>
/// <param name="Txn">The transaction of a call spanning shards (0 for Ingest).</param>
/// <param name="Payload">The payload, when it fits one message; empty when staged.</param>
/// <param name="Upload">The staged payload (<see cref="IShardGrain.StageChunk"/>), or empty.</param>
[GenerateSerializer, Immutable]
public sealed record ShardWrite([property: Id(0)] bool Prepare, [property: Id(1)] long Txn, [property: Id(2)] byte[] Payload, [property: Id(3)] Guid Upload);

/// <summary>One label matcher of a selector, on the wire.</summary>
[GenerateSerializer, Immutable]
public sealed record WireMatcher([property: Id(0)] string Name, [property: Id(1)] int Op, [property: Id(2)] string Value);

/// <summary>A query for one shard: the selector, the range and the silo's clock, so every shard reads the same
/// buckets (<c>ProfileStorage.PlanQuery</c>), and the caps of its partial tree.</summary>
[GenerateSerializer, Immutable]
public sealed record ShardQuery(
    [property: Id(0)] string Name, [property: Id(1)] WireMatcher[] Matchers, [property: Id(2)] long From, [property: Id(3)] long Until,
    [property: Id(4)] long Step, [property: Id(5)] long Now, [property: Id(6)] long MaxNodes, [property: Id(7)] long MaxNativeBytes);

/// <summary>A series lookup for one shard (<see cref="ShardQuery"/> without step and caps; no name: every series).</summary>
[GenerateSerializer, Immutable]
public sealed record ShardSeriesQuery([property: Id(0)] string? Name, [property: Id(1)] WireMatcher[] Matchers, [property: Id(2)] long From, [property: Id(3)] long Until, [property: Id(4)] long Now);

/// <summary>A shard's series lookup: Ok with the series, or the refusal (loading, load failed).</summary>
[GenerateSerializer, Immutable]
public sealed record ShardSeriesReply([property: Id(0)] ShardOutcome Outcome, [property: Id(1)] WireSeries[] Series);

/// <summary>A series (its tenant is the grain's) with its metadata.</summary>
[GenerateSerializer, Immutable]
public sealed record WireSeries(
    [property: Id(0)] string Name, [property: Id(1)] string[] LabelNames, [property: Id(2)] string[] LabelValues,
    [property: Id(3)] string SpyName, [property: Id(4)] uint SampleRate, [property: Id(5)] string Units, [property: Id(6)] string AggregationType);

/// <summary>One shard's part of a query.</summary>
/// <param name="Outcome">Ok, or QueryLimit when the partial tree passed the caps.</param>
/// <param name="TreesMerged">Stored trees the shard merged.</param>
/// <param name="Samples">The shard's timeline sums, one per step.</param>
/// <param name="Matched">Matching series with data, with their metadata.</param>
/// <param name="TreeLength">Bytes of the partial tree (a <c>TreeStore.Save</c> snapshot of one tree); 0: nothing matched.</param>
/// <param name="Tree">Its first bytes (all of them when <paramref name="More"/> is empty).</param>
/// <param name="More">The ticket under which <see cref="IShardGrain.ReadChunk"/> finds the rest, or empty.</param>
[GenerateSerializer, Immutable]
public sealed record ShardQueryReply(
    [property: Id(0)] ShardOutcome Outcome, [property: Id(1)] int TreesMerged, [property: Id(2)] long[] Samples, [property: Id(3)] WireSeries[] Matched,
    [property: Id(4)] long TreeLength, [property: Id(5)] byte[] Tree, [property: Id(6)] Guid More);

/// <summary>Where a shard grain runs (<see cref="IShardGrain.Locate"/>).</summary>
/// <param name="Silo">The silo of its activation.</param>
/// <param name="Bytes">Its bytes counted against that silo's budget (<c>Shard.BudgetBytes</c>).</param>
[GenerateSerializer, Immutable]
public sealed record ShardPlace([property: Id(0)] SiloAddress Silo, [property: Id(1)] long Bytes);
