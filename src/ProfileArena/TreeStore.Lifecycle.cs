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
        StoreRoot* root = pin.Root;
        TreeRecord* record = Tree(root, tree.RawId, tree.Generation, write: true);
        uint count;
        bool retire;
        using (TreeWriteScope.Enter(record, tree.Generation, "remove"))
        {
            count = record->Nodes.Count;
            record->Free(&root->Memory);
            record->Total = 0;
            Volatile.Write(ref record->Live, 0);
            // After 2^32 reuses a slot retires instead of wrapping its generation back to an old handle's.
            retire = record->Generation == uint.MaxValue;
            record->Generation++;
        }
        Interlocked.Add(ref root->NodeCount, -count);
        Interlocked.Decrement(ref root->LiveTrees);
        if (!retire)
        {
            using (_storeLock.Enter())
            {
                record->NextFree = root->FreeTreeHead;
                root->FreeTreeHead = tree.RawId + 1;
            }
        }
    }

    /// <summary>The live tree with id <paramref name="id"/> (for example in a loaded snapshot).</summary>
    /// <exception cref="ArgumentException">No live tree has that id.</exception>
    public ProfileTree GetTree(int id)
    {
        using StorePin pin = Pin();
        StoreRoot* root = pin.Root;
        if (id < 0 || (uint)id >= Volatile.Read(ref root->TreeCount) || Volatile.Read(ref root->Trees[(uint)id]->Live) == 0)
            throw new ArgumentException($"No tree with id {id} exists in this store.", nameof(id));
        return new ProfileTree(this, (uint)id, Volatile.Read(ref root->Trees[(uint)id]->Generation));
    }

    /// <summary>Handles to every live tree, by ascending id (a copy: later creates and removes do not change it).</summary>
    public ProfileTree[] GetTrees()
    {
        using StorePin pin = Pin();
        StoreRoot* root = pin.Root;
        var trees = new List<ProfileTree>((int)Volatile.Read(ref root->LiveTrees));
        uint slots = Volatile.Read(ref root->TreeCount);
        for (uint id = 0; id < slots; id++)
        {
            TreeRecord* record = root->Trees[id];
            if (Volatile.Read(ref record->Live) != 0) trees.Add(new ProfileTree(this, id, record->Generation));
        }
        return trees.ToArray();
    }

    /// <summary>True for a store opened with <see cref="OpenSnapshot"/>: every write throws.</summary>
    public bool IsReadOnly
    {
        get
        {
            using StorePin pin = Pin();
            StoreRoot* root = pin.Root;
            return root->ReadOnly != 0;
        }
    }
}
