using ProfileArena.Native;

namespace ProfileArena.Engine;

/// <summary>
/// Holds a tree's write lock for one change, after the checks every writer makes: the calling thread
/// must not be inside a visitor (a write waiting for readers while it holds a read lock can deadlock;
/// see <see cref="TreeWalker.ThrowIfInsideAVisitor"/>), and the handle's
/// generation must still be the tree's (checked under the lock, so a concurrent Remove is seen).
/// Insert, Clear, Truncate and a merge of a tree into itself use it.
/// </summary>
internal readonly unsafe ref struct TreeWriteScope
{
    private readonly TreeRecord* _tree;

    private TreeWriteScope(TreeRecord* tree) => _tree = tree;

    // `what` is the verb for the error message: "insert into", "clear", …
    public static TreeWriteScope Enter(TreeRecord* tree, uint generation, string what)
    {
        TreeWalker.ThrowIfInsideAVisitor(tree, what);
        tree->Lock.EnterWrite();
        try
        {
            tree->ThrowIfStale(generation);
        }
        catch
        {
            tree->Lock.ExitWrite();
            throw;
        }
        return new TreeWriteScope(tree);
    }

    public void Dispose() => _tree->Lock.ExitWrite();
}
