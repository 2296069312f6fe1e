namespace ProfileArena.Server.Storage.Trees;

/// <summary>Trees in one <see cref="TreeStore"/>: ids are the store's tree ids (kept by snapshots).</summary>
internal sealed class ArenaTreeBackend : ITreeBackend
{
    private readonly TreeStore _store;

    private ArenaTreeBackend(TreeStore store) => _store = store;

    /// <summary>An empty backend.</summary>
    public static ArenaTreeBackend CreateEmpty() => new(new TreeStore());

    /// <summary>The trees saved in <paramref name="path"/>, fully verified.</summary>
    /// <exception cref="InvalidDataException">The file is corrupt; the message names it and the byte offset.</exception>
    public static ArenaTreeBackend LoadFile(string path)
    {
        try
        {
            return new(TreeStore.LoadFile(path));
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"snapshot {path}: {e.Message}", e);
        }
    }

    /// <summary>True when <paramref name="tree"/> is a live tree of this backend (index files are checked against it).</summary>
    public bool Exists(int tree)
    {
        try
        {
            _store.GetTree(tree);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    public int Create() => _store.CreateTree().Id;

    public void Insert(int tree, ReadOnlySpan<byte> stack, ulong value) => _store.GetTree(tree).Insert(stack, value);

    public void Merge(int target, int source) => _store.GetTree(target).MergeFrom(_store.GetTree(source));

    /// <summary>One merge session for all of <paramref name="sources"/>: each name of this store is mapped to the
    /// destination's once per query, not once per node of every tree.</summary>
    public void MergeInto(ProfileTree destination, ReadOnlySpan<int> sources)
    {
        if (sources.IsEmpty) return;
        using TreeMergeSession session = destination.BeginMerge(_store);
        foreach (int source in sources) session.Merge(_store.GetTree(source));
    }

    public bool TryGetProfileTree(int tree, out ProfileTree handle)
    {
        handle = _store.GetTree(tree);
        return true;
    }

    public void Remove(int tree) => _store.Remove(_store.GetTree(tree));

    public ulong Total(int tree) => _store.GetTree(tree).Total;

    /// <summary>The slot's generation and the engine's per-tree write version (native-notes.md, "Server storage").</summary>
    public TreeStamp Stamp(int tree)
    {
        ProfileTree t = _store.GetTree(tree);
        return new TreeStamp(t.Generation, t.WriteVersion);
    }

    public long TreeCount => _store.TreeCount;

    public long NodeCount => _store.NodeCount;

    public long NativeBytes => _store.NativeBytes;

    public long BudgetBytes => _store.NativeBytes;

    /// <summary>Every byte of the stacks as new names plus 48 bytes per stack for its new nodes and edges.</summary>
    public long GrowthEstimate(long stackBytes, long stacks) => stackBytes + 48 * stacks;

    public void SaveToFile(string path) => _store.SaveToFile(path);

    public long NameBytes => _store.SymbolBytes;

    /// <summary>A fresh store with each tree merged into a new tree (<see cref="ProfileTree.MergeFrom"/> across stores
    /// re-interns only the names the tree uses, in work proportional to the tree, not to this store's names).</summary>
    public ITreeBackend CopyTrees(IReadOnlyList<int> trees, Span<int> newIds)
    {
        if (newIds.Length != trees.Count) throw new ArgumentException($"{trees.Count} trees but {newIds.Length} slots for their new ids", nameof(newIds));
        var fresh = new TreeStore();
        try
        {
            for (int i = 0; i < trees.Count; i++)
            {
                ProfileTree copy = fresh.CreateTree();
                copy.MergeFrom(_store.GetTree(trees[i]));
                newIds[i] = copy.Id;
            }
            return new ArenaTreeBackend(fresh);
        }
        catch
        {
            fresh.Dispose();
            throw;
        }
    }

    public void Dispose() => _store.Dispose();
}
