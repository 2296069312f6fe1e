namespace ProfileArena.Server.Cluster;

/// <summary>
/// Where tests slow a shard grain down (a long query, a long load, a late answer to a write) to see the cluster's
/// long-work paths: a query collected over many calls, the query deadline, cancellation, a load that outlasts the
/// activation's calls, a write whose answer comes after the caller's timeout. The
/// silo registers this no-op; tests register a subclass before <c>AddShardGrains</c>. Each hook gets the grain's
/// cancellation, so a test observes that cancelled work stops.
/// </summary>
internal class ShardGrainHooks
{
    /// <summary>Runs before shard <paramref name="key"/> loads its snapshot and WAL (in the background of activation).</summary>
    public virtual Task BeforeOpen(string key, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs before shard <paramref name="key"/> merges its part of a query (in the background of the call).</summary>
    public virtual Task BeforeQuery(string key, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs after shard <paramref name="key"/> made a write durable, before the grain answers the call.</summary>
    public virtual Task AfterWrite(string key) => Task.CompletedTask;
}

/// <summary>A shard is still loading (snapshot and WAL replay after activation) after the caller's bounded wait:
/// 503 with a short Retry-After.</summary>
public sealed class ShardLoadingException : Storage.StorageUnavailableException
{
    /// <summary>Shard <paramref name="shard"/> (its grain key) is loading.</summary>
    public ShardLoadingException(string shard) : base($"shard {shard} is loading, retry") => RetryAfterSeconds = RetrySeconds;

    /// <summary>The Retry-After sent with it.</summary>
    public const int RetrySeconds = 5;
}
