namespace ProfileArena;

/// <summary>Caps for a <see cref="TreeStore"/>. An operation that would pass one throws
/// <see cref="StoreLimitExceededException"/> and changes nothing.</summary>
public sealed class TreeStoreOptions
{
    /// <summary>Most nodes in the store, over all trees, each tree's root included. Default: no cap
    /// beyond the 32-bit index space of each tree.</summary>
    public long MaxNodes { get; init; } = long.MaxValue;

    /// <summary>Most bytes of distinct frame names the store interns. Default: the 32 GiB the arena can address.</summary>
    public long MaxSymbolBytes { get; init; } = 1L << 35;

    /// <summary>Most native memory the store holds, in bytes (slabs, tables, arena, caches). Default: no cap.</summary>
    public long MaxNativeBytes { get; init; } = long.MaxValue;

    internal void Validate()
    {
        if (MaxNodes < 1) throw new ArgumentOutOfRangeException(nameof(MaxNodes), MaxNodes, "must be at least 1");
        if (MaxSymbolBytes < 0) throw new ArgumentOutOfRangeException(nameof(MaxSymbolBytes), MaxSymbolBytes, "must not be negative");
        if (MaxNativeBytes < 1) throw new ArgumentOutOfRangeException(nameof(MaxNativeBytes), MaxNativeBytes, "must be positive");
    }
}
