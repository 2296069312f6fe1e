using ProfileArena.Native;

namespace ProfileArena.Engine;

/// <summary>
/// Holds a tree's read lock for one read (Iterate, Top, Save, one side of a merge) — unless this thread
/// is already iterating the tree: a visitor that reads its own tree again already holds the read lock,
/// and taking it twice would deadlock behind a waiting writer. A read taken while this thread holds
/// another tree's lock is a nested read (<see cref="TreeLock.EnterRead"/>): it does not yield to waiting
/// writers. The lock map is on <see cref="StoreLock"/>.
/// </summary>
internal readonly unsafe ref struct TreeReadScope
{
    private readonly TreeRecord* _held; // null: this thread already held the read lock, nothing to release

    private TreeReadScope(TreeRecord* held) => _held = held;

    /// <summary>Takes the read lock (unless already held by this thread) without checking the tree is live.</summary>
    public static TreeReadScope Enter(TreeRecord* tree)
    {
        if (TreeWalker.IsIteratingOnThisThread(tree)) return default;
        tree->Lock.EnterRead(nested: TreeWalker.HoldsReadLock);
        return new TreeReadScope(tree);
    }

    /// <summary>
    /// Takes the read lock and throws if the handle's generation is no longer the tree's (checked under
    /// the lock, so a concurrent Remove is seen; a stale handle throws even inside a visitor).
    /// </summary>
    public static TreeReadScope Enter(TreeRecord* tree, uint generation)
    {
        TreeReadScope scope = Enter(tree);
        try
        {
            tree->ThrowIfStale(generation);
        }
        catch
        {
            scope.Dispose();
            throw;
        }
        return scope;
    }

    public void Dispose()
    {
        if (_held != null) _held->Lock.ExitRead();
    }
}
