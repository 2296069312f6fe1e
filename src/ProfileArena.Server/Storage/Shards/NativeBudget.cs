namespace ProfileArena.Server.Storage.Shards;

/// <summary>
/// The storage-wide native-memory budget (<c>Storage:MaxNativeBytes</c>), shared by every shard. Admission
/// reserves an upper estimate of a write's growth until the write has been applied, so writes admitted
/// together — several in one shard's group commit, or in different shards at once — cannot add up past
/// the budget: each is checked against what is held plus what the others may still add.
/// </summary>
/// <remarks><paramref name="reclaim"/> (the merge cache's <c>Reclaim</c>: evicts what no query is using, returns the
/// bytes freed, takes no lock a query holds while waiting) runs before a write is refused. Thread safety: one lock around check-and-reserve and release; <paramref name="held"/> (the sum of
/// the shards' <c>NativeBytes</c>, lock-free reads) is read under it. The estimate bounds a write's nodes and
/// names, not the lumps a store takes on the way (a hash table that doubles, a 2 MiB huge-page block), so writes
/// are admitted only up to <see cref="AdmissionLimit"/>, 1/16 under the budget: that headroom absorbs the lumps
/// (measured past the admission line under load: 0.7–2 % of a 24 MiB budget; native-notes.md, "Server storage").</remarks>
internal sealed class NativeBudget(long limit, Func<long> held, Func<long>? reclaim = null)
{
    private readonly Lock _lock = new();
    private long _reserved;

    /// <summary>The budget in bytes; 0 means none.</summary>
    public long Limit => limit;

    /// <summary>Bytes reserved by writes admitted and not yet applied: memory the shards are about to take, which the
    /// merge cache must leave free (a cache grown into it would put the stores past the budget once those writes apply).</summary>
    /// <remarks>Read without the lock (an atomic read of a value changed under it): the cache asks while holding its own
    /// lock, and <see cref="Reserve"/> holds this lock while it calls the cache's reclaim, so taking it here would
    /// order the two locks both ways.</remarks>
    public long Reserved => Interlocked.Read(ref _reserved);

    /// <summary>Where admission stops: the budget less 1/16 kept for the growth no estimate sees.</summary>
    public long AdmissionLimit => limit - limit / 16;

    /// <summary>Reserves <paramref name="bytes"/> when held + reserved + bytes fits under <see cref="AdmissionLimit"/>
    /// (always, without a budget); otherwise throws <see cref="StorageFullException"/> naming the figures and reserves nothing.</summary>
    public void Reserve(long bytes)
    {
        if (limit <= 0) return;
        lock (_lock)
        {
            long now = held();
            if (now + _reserved + bytes > AdmissionLimit && reclaim != null && reclaim() > 0) now = held(); // the merge cache gives its room back first
            if (now + _reserved + bytes > AdmissionLimit)
                throw new StorageFullException($"storage is full: {now:N0} bytes held by the stores (native bytes; Baseline: estimated managed bytes) and {_reserved:N0} reserved by writes in flight, this write needs up to {bytes:N0} more; writes are admitted up to {AdmissionLimit:N0}, 1/16 under the budget (Storage:MaxNativeBytes) of {limit:N0}; nothing was stored");
            Interlocked.Add(ref _reserved, bytes);
        }
    }

    /// <summary>Gives back a reservation once its write is applied (its memory now counts as held) or refused.</summary>
    public void Release(long bytes)
    {
        if (limit <= 0 || bytes == 0) return;
        lock (_lock) Interlocked.Add(ref _reserved, -bytes);
    }
}
