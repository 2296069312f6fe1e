using ProfileArena.Server.Storage;

namespace ProfileArena.Server.Cluster;

/// <summary>Storage types to and from their wire forms (<see cref="IShardGrain"/>'s messages).</summary>
internal static class WireCodec
{
    public static WireMatcher[] Matchers(SeriesSelector? selector) =>
        selector is null ? [] : [.. selector.Matchers.Select(m => new WireMatcher(m.Name, (int)m.Op, m.Value))];

    /// <summary>The selector again (regular expressions compile anew; they were valid where they were parsed).</summary>
    public static SeriesSelector? Selector(string? name, WireMatcher[] matchers) =>
        name is null ? null : new SeriesSelector(name, [.. matchers.Select(m => new LabelMatcher(m.Name, (MatchOp)m.Op, m.Value))]);

    public static WireSeries Series(SeriesKey key, SeriesMetadata metadata) =>
        new(key.Name, [.. key.Labels.Select(l => l.Name)], [.. key.Labels.Select(l => l.Value)], metadata.SpyName, metadata.SampleRate, metadata.Units, metadata.AggregationType);

    public static SeriesKey Key(string tenant, WireSeries series) =>
        new(tenant, series.Name, series.LabelNames.Select((n, i) => new Label(n, series.LabelValues[i])));

    public static SeriesMetadata Metadata(WireSeries series) => new(series.SpyName, series.SampleRate, series.Units, series.AggregationType);

    /// <summary>The outcome for a refusal the single node signals by exception; null for anything else (a bug: it propagates).</summary>
    public static ShardOutcome? Outcome(Exception e) => e switch
    {
        StorageFullException => new(ShardOutcomeKind.Full, e.Message),
        ShardLoadingException => new(ShardOutcomeKind.Loading, e.Message),
        StorageUnavailableException or IOException => new(ShardOutcomeKind.Unavailable, e.Message),
        OverflowException => new(ShardOutcomeKind.Overflow, e.Message),
        ArgumentException => new(ShardOutcomeKind.Invalid, e.Message),
        StoreLimitExceededException => new(ShardOutcomeKind.QueryLimit, e.Message),
        // A commit whose prepared part is gone (aborted after a timeout, or the grain was reactivated).
        InvalidOperationException => new(ShardOutcomeKind.Unavailable, e.Message),
        _ => null,
    };

    /// <summary>Throws the single node's exception for a refusal.</summary>
    /// <param name="outcome">The grain's outcome.</param>
    /// <param name="shard">The grain's key, for the message.</param>
    /// <param name="queryCap">The partial tree's node cap, named by a QueryLimit refusal.</param>
    public static void ThrowIfFailed(ShardOutcome outcome, string shard, long queryCap = 0)
    {
        string message = $"{outcome.Message} (shard {shard})";
        switch (outcome.Kind)
        {
            case ShardOutcomeKind.Ok: return;
            case ShardOutcomeKind.Full: throw new StorageFullException(message);
            case ShardOutcomeKind.Overflow: throw new OverflowException(message);
            case ShardOutcomeKind.Invalid: throw new ArgumentException(message);
            case ShardOutcomeKind.QueryLimit: throw new StoreLimitExceededException(StoreLimit.Nodes, queryCap, message);
            case ShardOutcomeKind.Loading: throw new ShardLoadingException(shard);
            default: throw new StorageUnavailableException(message);
        }
    }
}
