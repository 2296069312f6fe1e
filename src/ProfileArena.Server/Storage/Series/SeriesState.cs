namespace ProfileArena.Server.Storage.Series;

/// <summary>
/// One series inside a shard: its key, its latest metadata and, per level, the tree of each bucket
/// (bucket start in unix seconds → tree id in the shard's backend). Guarded by the shard's index lock.
/// </summary>
internal sealed class SeriesState(SeriesKey key, SeriesMetadata metadata, int levels)
{
    public SeriesKey Key { get; } = key;

    /// <summary>As the client last declared it (pyroscope overwrites it on every put, so do we).</summary>
    public SeriesMetadata Metadata { get; set; } = metadata;

    /// <summary>Per level: bucket start → tree id.</summary>
    public Dictionary<long, int>[] Buckets { get; } = [.. Enumerable.Range(0, levels).Select(_ => new Dictionary<long, int>())];

    public int TreeCount => Buckets.Sum(b => b.Count);
}
