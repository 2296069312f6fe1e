namespace ProfileArena.Engine;

/// <summary>
/// The store's one managed lock, and the map of which lock guards what (native-notes.md, "Locks",
/// says the same for readers of the notes).
/// </summary>
/// <remarks>
/// <para><b>The store lock</b> (this type; one per <see cref="TreeStore"/>) guards the state shared by
/// all trees of a store: the symbol table's hash slots and entries (finds, interning, rollback of a
/// refused batch), the tree list's growth and its free list of removed slots (CreateTree, Remove),
/// and the one-time verification of a mapped snapshot (its names, each tree, the mapped-file check).
/// It is held only for those steps, never for a tree's node work, so writers on different trees
/// overlap everywhere else. It is passed down the call chain (Insert, MergeFrom, Truncate, Save) as a
/// value of this type; never take a tree lock while holding it.</para>
/// <para><b>A tree's lock</b> (<see cref="Native.TreeLock"/>, inside its native record) guards that
/// tree's nodes, edge index, path cache, total, generation and cached iteration plan. Writers take it
/// through <see cref="TreeWriteScope"/> (one tree) or <see cref="TreeMergeScope"/> (a target and a
/// different source, in address order); readers through <see cref="TreeReadScope"/>, which does not take
/// it again on a thread already iterating the tree. Two rules keep nesting free of deadlocks: a read on a
/// thread that holds another tree lock is a nested read that does not yield to waiting writers, and
/// writes inside a visitor are refused (<see cref="TreeWalker.ThrowIfInsideAVisitor"/>).</para>
/// <para>Order: a tree lock may be held while the store lock is taken (an insert interning names),
/// never the reverse.</para>
/// </remarks>
internal readonly struct StoreLock
{
    private readonly Lock _lock;

    private StoreLock(Lock @lock) => _lock = @lock;

    /// <summary>A new lock (one per store).</summary>
    public static StoreLock Create() => new(new Lock());

    /// <summary>Enters the lock until the returned scope is disposed.</summary>
    public Lock.Scope Enter() => _lock.EnterScope();
}
