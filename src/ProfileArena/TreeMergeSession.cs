using ProfileArena.Engine;

namespace ProfileArena;

/// <summary>
/// Merges many trees of one source <see cref="TreeStore"/> into one destination tree, mapping each source
/// name to the destination store's name once for the whole session (from <see cref="ProfileTree.BeginMerge"/>).
/// Each <see cref="Merge"/> has exactly the effect of <see cref="ProfileTree.MergeFrom(ProfileTree)"/>, all or
/// nothing per tree, and takes the same locks for that one tree; between calls the session holds no lock and no
/// pin, only its name map (process scratch: a few bytes per distinct source name met, counted by
/// <see cref="TreeStore.ProcessNativeBytes"/> until <see cref="Dispose"/>).
/// </summary>
/// <remarks>
/// The map stays true for the life of both stores: names are only ever added to a store (a name a node refers to
/// was committed before the node existed, and a refused merge unmaps the names it had queued). Trees may be
/// inserted into, merged, removed or created in either store while the session lives; removed trees simply throw
/// when merged. A session is used by one thread at a time: a call while another thread is inside
/// <see cref="Merge"/> throws <see cref="InvalidOperationException"/> rather than corrupting the map.
/// </remarks>
public sealed class TreeMergeSession : IDisposable
{
    private const int Idle = 0, Merging = 1, Disposed = 2;

    private MergeMaps _maps;
    private int _state;

    internal TreeMergeSession(ProfileTree destination, TreeStore source)
    {
        Destination = destination;
        Source = source;
    }

    /// <summary>The tree every merge adds into.</summary>
    public ProfileTree Destination { get; }

    /// <summary>The store every merged tree must belong to.</summary>
    public TreeStore Source { get; }

    /// <summary>Process scratch held by the session's maps now (grows with the distinct names met and the
    /// largest tree merged; freed by <see cref="Dispose"/>).</summary>
    public long ScratchBytes => Volatile.Read(ref _state) == Disposed ? 0 : _maps.HeldBytes;

    /// <summary>
    /// Adds every value of <paramref name="tree"/> into <see cref="Destination"/>, exactly as
    /// <see cref="ProfileTree.MergeFrom(ProfileTree)"/> would. All or nothing: on an exception the destination
    /// and its store are unchanged and the session stays usable.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="tree"/> belongs to another store than <see cref="Source"/>.</exception>
    /// <exception cref="ObjectDisposedException">The session or either store is disposed.</exception>
    /// <exception cref="InvalidOperationException">Another thread is using the session; a default handle; a removed tree;
    /// called from a visitor; the destination store is read-only.</exception>
    /// <exception cref="OverflowException">The destination's total would pass 2^64 − 1.</exception>
    /// <exception cref="StoreLimitExceededException">A cap of the destination's store would be passed.</exception>
    public void Merge(ProfileTree tree)
    {
        if (!ReferenceEquals(tree.Store, Source))
            throw new ArgumentException("The tree belongs to another store than the session's source store; start a session per source store.", nameof(tree));
        Enter();
        try
        {
            Destination.MergeFrom(tree, ref _maps);
        }
        finally
        {
            Volatile.Write(ref _state, Idle);
        }
    }

    private void Enter()
    {
        switch (Interlocked.CompareExchange(ref _state, Merging, Idle))
        {
            case Idle: return;
            case Disposed: throw new ObjectDisposedException(nameof(TreeMergeSession));
            default: throw new InvalidOperationException("The merge session is in use by another thread; a session is used by one thread at a time.");
        }
    }

    /// <summary>Frees the session's maps. Idempotent; the stores and trees are untouched.</summary>
    /// <exception cref="InvalidOperationException">Another thread is inside <see cref="Merge"/>.</exception>
    public void Dispose()
    {
        int was = Interlocked.CompareExchange(ref _state, Disposed, Idle);
        if (was == Merging) throw new InvalidOperationException("The merge session is in use by another thread; dispose it after its last Merge.");
        if (was == Disposed) return;
        _maps.Free();
        GC.SuppressFinalize(this);
    }

    /// <summary>A session never disposed gives its scratch back when collected (nobody can be using it then).</summary>
    ~TreeMergeSession() => _maps.Free();
}
