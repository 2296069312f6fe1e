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

    /// <summary>Adds the staging tree into <paramref name="target"/> (the one commit step of every import).</summary>
    public void CommitInto(ProfileTree target) => Commit(Tree, target);

    /// <summary>
    /// Adds every node of <paramref name="source"/> into <paramref name="target"/>: each node's self on its
    /// path, and every node whose total is 0 as a value-0 path, so the node set and all self/total
    /// values add up exactly.
    /// </summary>
    internal static void Commit(ProfileTree source, ProfileTree target)
    {
        // Temporary implementation until ProfileTree.MergeFrom (atomic, all-or-nothing) is on this
        // branch. The overflow check below makes the common failure atomic; a store cap hit half-way
        // (StoreLimitExceededException) would leave a partial merge, which MergeFrom rules out.
        ulong total = source.Total;
        if (target.Total > ulong.MaxValue - total)
            throw new OverflowException($"Merging {total} into a tree whose total is {target.Total} would overflow 2^64 − 1; the tree is unchanged.");
        var visitor = new CommitVisitor(target);
        source.Iterate(ref visitor);
    }

    private readonly struct CommitVisitor(ProfileTree target) : IStackVisitor
    {
        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
        {
            if (self > 0 || total == 0) target.Insert(stack, self);
        }
    }

    public void Dispose() => _store.Dispose();
}
