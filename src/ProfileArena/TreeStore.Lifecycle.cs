using ProfileArena.Engine;
using ProfileArena.Native;

namespace ProfileArena;

public sealed unsafe partial class TreeStore
{
    /// <summary>
    /// Removes <paramref name="tree"/> from the store and frees its nodes, edge index and path cache
    /// (their bytes leave <see cref="NativeBytes"/> at once). The tree's slot is reused by a later
    /// <see cref="CreateTree"/> under a new generation: every existing handle to the removed tree then
    /// throws <see cref="InvalidOperationException"/> and never sees the new tree.
    /// </summary>
    /// <exception cref="ArgumentException">The handle belongs to another store.</exception>
    /// <exception cref="InvalidOperationException">The tree was already removed, the store is read-only,
    /// or the calling thread is iterating the tree.</exception>
    public void Remove(ProfileTree tree)
    {
        if (!ReferenceEquals(tree.Store, this))
            throw new ArgumentException("The tree belongs to another TreeStore.", nameof(tree));
        using StorePin pin = Pin();
        TreeRecord* record = TreeForWrite(pin, tree.RawId, tree.Generation);
        TreeLifecycle.Remove(_storeLock, pin.Root, record, tree.RawId, tree.Generation);
    }

    /// <summary>The live tree with id <paramref name="id"/> (for example in a loaded snapshot).</summary>
    /// <exception cref="ArgumentException">No live tree has that id.</exception>
    public ProfileTree GetTree(int id)
    {
        using StorePin pin = Pin();
        if (id < 0 || !pin.TryGetLive((uint)id, out uint generation))
            throw new ArgumentException($"No tree with id {id} exists in this store.", nameof(id));
        return new ProfileTree(this, (uint)id, generation);
    }

    /// <summary>Handles to every live tree, by ascending id (a copy: later creates and removes do not change it).</summary>
    public ProfileTree[] GetTrees()
    {
        using StorePin pin = Pin();
        var trees = new List<ProfileTree>(pin.LiveTreeCount);
        uint slots = pin.SlotCount;
        for (uint id = 0; id < slots; id++)
            if (pin.TryGetLive(id, out uint generation)) trees.Add(new ProfileTree(this, id, generation));
        return trees.ToArray();
    }

    /// <summary>True for a store opened with <see cref="OpenSnapshot"/>: every write throws.</summary>
    public bool IsReadOnly
    {
        get
        {
            using StorePin pin = Pin(); // throws after Dispose, like every member
            return _mapped != null;
        }
    }
}
