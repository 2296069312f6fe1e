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

    /// <summary>Keep each tree's subtree totals (8 bytes per node, charged to the store, while the store stays under
    /// three quarters of <see cref="MaxNativeBytes"/>) from one <see cref="ProfileTree.MergeTruncated"/> read to the next,
    /// until the tree's next write: for stores whose trees are summed again and again unchanged (a server's cached
    /// merges). Default false: the totals are computed for each read and freed after it.</summary>
    public bool KeepSubtreeTotals { get; init; }

    /// <summary>Most bytes in one stack (a key, or any root-to-node path of a tree: names and the ';'
    /// between them). Enforced by Insert, MergeFrom, Load and OpenSnapshot, so every tree of the store,
    /// however it was built, has paths that fit: Iterate's path buffer, Top's stacks and every length
    /// computed from a path stay within this bound. Default: 16 MiB; at most
    /// <see cref="HardMaxStackBytes"/>.</summary>
    public int MaxStackBytes { get; init; } = DefaultMaxStackBytes;

    /// <summary>Most frames (names) in one stack, enforced like <see cref="MaxStackBytes"/>. Default:
    /// 1,048,576 (2^20); at most <see cref="HardMaxStackBytes"/>.</summary>
    public int MaxStackFrames { get; init; } = DefaultMaxStackFrames;

    /// <summary>The default of <see cref="MaxStackBytes"/>: 16 MiB.</summary>
    public const int DefaultMaxStackBytes = 1 << 24;

    /// <summary>The default of <see cref="MaxStackFrames"/>: 2^20.</summary>
    public const int DefaultMaxStackFrames = 1 << 20;

    /// <summary>The largest value <see cref="MaxStackBytes"/> and <see cref="MaxStackFrames"/> accept: 1 GiB,
    /// so that a path length plus a name length plus a separator always fits an <c>int</c>.</summary>
    public const int HardMaxStackBytes = 1 << 30;

    internal void Validate()
    {
        if (MaxStackBytes is < 1 or > HardMaxStackBytes) throw new ArgumentOutOfRangeException(nameof(MaxStackBytes), MaxStackBytes, $"must be between 1 and {HardMaxStackBytes}");
        if (MaxStackFrames is < 1 or > HardMaxStackBytes) throw new ArgumentOutOfRangeException(nameof(MaxStackFrames), MaxStackFrames, $"must be between 1 and {HardMaxStackBytes}");
        if (MaxNodes < 1) throw new ArgumentOutOfRangeException(nameof(MaxNodes), MaxNodes, "must be at least 1");
        if (MaxSymbolBytes < 0) throw new ArgumentOutOfRangeException(nameof(MaxSymbolBytes), MaxSymbolBytes, "must not be negative");
        if (MaxNativeBytes < 1) throw new ArgumentOutOfRangeException(nameof(MaxNativeBytes), MaxNativeBytes, "must be positive");
    }
}
