namespace ProfileArena.Server.Storage.Trees;

/// <summary>
/// The few tree operations a shard uses, over one set of trees addressed by int ids. This is the seam for
/// issue 12's <c>--storage arena|baseline</c> (<see cref="TreeBackends"/>): <see cref="ArenaTreeBackend"/> keeps
/// the trees in a <see cref="TreeStore"/>; <see cref="BaselineTreeBackend"/> in object-per-node Baseline trees.
/// Thread safety is the arena's: readers and writers of different trees run in parallel, one tree admits
/// many readers or one writer.
/// </summary>
internal interface ITreeBackend : IDisposable
{
    /// <summary>True when <paramref name="tree"/> is a live tree (index files are checked against it).</summary>
    bool Exists(int tree);

    /// <summary>A new empty tree.</summary>
    int Create();

    /// <summary>Adds <paramref name="value"/> along <paramref name="stack"/> (frames separated by ';').</summary>
    void Insert(int tree, ReadOnlySpan<byte> stack, ulong value);

    /// <summary>Adds all of <paramref name="source"/> (a tree of this backend) into <paramref name="target"/>; all or nothing.</summary>
    void Merge(int target, int source);

    /// <summary>Adds all of <paramref name="sources"/> into the caller's <paramref name="destination"/> (a query result),
    /// in order; each tree all or nothing. One call per query and shard, so the arena maps names once for all of them.</summary>
    void MergeInto(ProfileTree destination, ReadOnlySpan<int> sources);

    /// <summary>Frees the tree; its id may be reused by a later <see cref="Create"/>.</summary>
    void Remove(int tree);

    /// <summary>The engine's handle of <paramref name="tree"/>, for a caller that reads it in place under the shard's
    /// removal lock (a truncated sum); false when the backend has no such handle (Baseline: its trees are objects).</summary>
    bool TryGetProfileTree(int tree, out ProfileTree handle);

    /// <summary>Which tree <paramref name="tree"/> is (it differs for a later tree reusing the id) and the version of its
    /// contents (it changes with every write to the tree). Read it before reading the tree: a write in between leaves
    /// what was read newer than the version, never older. The query merge cache (<see cref="Cache.MergeCache"/>)
    /// keys cached merges by it.</summary>
    TreeStamp Stamp(int tree);

    /// <summary>Sum of the tree's values.</summary>
    ulong Total(int tree);

    /// <summary>Number of live trees.</summary>
    long TreeCount { get; }

    /// <summary>Nodes of all trees.</summary>
    long NodeCount { get; }

    /// <summary>Bytes held outside the managed heap (0 for a managed backend).</summary>
    long NativeBytes { get; }

    /// <summary>Bytes counted against <c>Storage:MaxNativeBytes</c>: the native bytes for the arena, an estimate of
    /// the managed bytes of the nodes for Baseline (whose trees live on the managed heap).</summary>
    long BudgetBytes { get; }

    /// <summary>What a write of <paramref name="stacks"/> stacks of <paramref name="stackBytes"/> bytes may add to
    /// <see cref="BudgetBytes"/> in one tree: the admission estimate of the budget (not a bound on a doubling table).</summary>
    long GrowthEstimate(long stackBytes, long stacks);

    /// <summary>Writes every tree to <paramref name="path"/> atomically (temp file, fsync, rename); ids are kept.</summary>
    void SaveToFile(string path);

    /// <summary>Bytes of frame names held apart from the trees, which removing a tree does not free: the arena's
    /// symbol table (names are interned once per store and kept until the store is disposed). 0 for Baseline, whose
    /// names are fields of its nodes and go with their trees. A shard compares it with what its live trees need
    /// to decide when to compact (native-notes.md, "Server storage", compaction).</summary>
    long NameBytes { get; }

    /// <summary>A new backend holding a copy of each of <paramref name="trees"/> (and only the names they use);
    /// <paramref name="newIds"/>[i] receives the id of the copy of <paramref name="trees"/>[i]. This backend is
    /// only read (queries may go on). All or nothing: on failure the new backend is disposed and the exception
    /// propagates. Only a backend with <see cref="NameBytes"/> &gt; 0 needs it.</summary>
    /// <exception cref="NotSupportedException">Baseline: its names are freed with its trees, there is nothing to reclaim.</exception>
    ITreeBackend CopyTrees(IReadOnlyList<int> trees, Span<int> newIds);
}

/// <summary>One state of one tree of a backend: <see cref="Identity"/> tells the tree apart from a later tree that reuses
/// its id, <see cref="Version"/> changes with every write to it.</summary>
internal readonly record struct TreeStamp(ulong Identity, ulong Version);
