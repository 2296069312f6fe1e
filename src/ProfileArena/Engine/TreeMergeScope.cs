using ProfileArena.Native;

namespace ProfileArena.Engine;

/// <summary>
/// Holds a merge target's write lock and its (different) source's read lock, after the checks every
/// writer makes (<see cref="TreeWriteScope"/>). The locks are taken in address order so that two merges
/// in opposite directions cannot deadlock; with the target's write lock held, the source's read lock is
/// a nested read: it must not queue behind a waiting writer of the source (whose readers may be waiting
/// for the target). The lock map is on <see cref="StoreLock"/>.
/// </summary>
internal readonly unsafe ref struct TreeMergeScope
{
    private readonly TreeRecord* _target;
    private readonly TreeRecord* _source;

    private TreeMergeScope(TreeRecord* target, TreeRecord* source)
    {
        _target = target;
        _source = source;
    }

    public static TreeMergeScope Enter(TreeRecord* target, uint targetGeneration, TreeRecord* source, uint sourceGeneration)
    {
        TreeWalker.ThrowIfInsideAVisitor(target, "merge into");
        bool targetFirst = target < source;
        if (targetFirst) target->Lock.EnterWrite();
        source->Lock.EnterRead(nested: targetFirst);
        if (!targetFirst) target->Lock.EnterWrite();
        var scope = new TreeMergeScope(target, source);
        try
        {
            target->ThrowIfStale(targetGeneration);
            source->ThrowIfStale(sourceGeneration);
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
        _target->Lock.ExitWrite();
        _source->Lock.ExitRead();
    }
}
