namespace ProfileArena.Formats;

/// <summary>
/// Atomic imports: every importer parses into a private staging tree in a store of its own, and only
/// when the whole input has been read is the result committed into the caller's tree, in one call.
/// A failed parse disposes the staging store and leaves the target untouched.
/// </summary>
internal sealed class StagedImport : IDisposable
{
    private readonly TreeStore _store = new();

    public StagedImport() => Tree = _store.CreateTree();

    /// <summary>The private tree the parser fills.</summary>
    public ProfileTree Tree { get; }

    /// <summary>Adds the staging tree into <paramref name="target"/> (the one commit step of every import)
    /// with <see cref="ProfileTree.MergeFrom(ProfileTree)"/>: all or nothing, across stores; on
    /// OverflowException or StoreLimitExceededException the target is unchanged.</summary>
    public void CommitInto(ProfileTree target) => target.MergeFrom(Tree);

    public void Dispose() => _store.Dispose();
}
