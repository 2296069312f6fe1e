namespace ProfileArena.Server.Storage.Shards;

/// <summary>
/// The storage-wide native-memory budget (<c>Storage:MaxNativeBytes</c>), shared by every shard. Admission
/// reserves an upper estimate of a write's growth until the write has been applied, so writes admitted
/// together — several in one shard's group commit, or in different shards at once — cannot add up past
/// the budget: each is checked against what is held plus what the others may still add.
/// </summary>
/// <remarks>Thread safety: one lock around check-and-reserve and release; <paramref name="held"/> (the sum of
/// the shards' <c>NativeBytes</c>, lock-free reads) is read under it. What remains: the estimate bounds a
/// write's nodes and names, not a hash table that doubles on the way (native-notes.md, "Server storage").</remarks>
internal sealed class NativeBudget(long limit, Func<long> held)
{
    private readonly Lock _lock = new();
    private long _reserved;

    /// <summary>The budget in bytes; 0 means none.</summary>
    public long Limit => limit;

    /// <summary>Reserves <paramref name="bytes"/> when held + reserved + bytes fits the budget (always, without
    /// one); otherwise throws <see cref="StorageFullException"/> naming the figures and reserves nothing.</summary>
    public void Reserve(long bytes)
    {
        if (limit <= 0) return;
        lock (_lock)
        {
            long now = held();
            if (now + _reserved + bytes > limit)
                throw new StorageFullException($"storage is full: {now:N0} bytes held by the stores (native bytes; Baseline: estimated managed bytes) and {_reserved:N0} reserved by writes in flight, this write needs up to {bytes:N0} more, the budget (Storage:MaxNativeBytes) is {limit:N0}; nothing was stored");
            _reserved += bytes;
        }
    }

    /// <summary>Gives back a reservation once its write is applied (its memory now counts as held) or refused.</summary>
    public void Release(long bytes)
    {
        if (limit <= 0 || bytes == 0) return;
        lock (_lock) _reserved -= bytes;
    }
}
