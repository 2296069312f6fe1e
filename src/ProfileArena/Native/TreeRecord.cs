using System.Diagnostics;

namespace ProfileArena.Native;

/// <summary>Everything one tree owns, in native memory (one record per tree slot in the store's tree list).</summary>
/// <remarks>
/// A slot is live (<see cref="Live"/> = 1) from CreateTree until Remove. Remove frees the slot's nodes,
/// edges and cache, increments <see cref="Generation"/> and pushes the slot on the store's free list,
/// so CreateTree reuses the record (never its memory: records never move and are freed with the store).
/// A <see cref="ProfileTree"/> carries the slot and the generation it was created with; every call
/// checks both under the tree's lock, so a handle to a removed tree never reaches a reused slot's nodes.
/// </remarks>
internal unsafe struct TreeRecord
{
    public TreeLock Lock;
    /// <summary>The cached visit order of the last Iterate (an <see cref="IterationPlan"/>*), or 0.</summary>
    public nint Plan;
    /// <summary>The kept subtree totals (a <see cref="CachedTotals"/>*) of a store that keeps them, or 0.</summary>
    public nint Totals;
    /// <summary>Sum of every value inserted: the root's total, and the largest total of any node.</summary>
    public ulong Total;
    public NodeSlabs Nodes;
    public EdgeIndex Edges;
    public PathCache Cache;
    public uint Generation;
    public uint Live;          // 1 while the slot holds a tree
    public uint NextFree;      // free list link: slot + 1, 0 = end

    /// <summary>Creates the root (node 0, empty name). Throws before anything is visible.</summary>
    public void Init(NativeAllocator* memory)
    {
        Nodes.EnsureCapacity(memory, 1);
        Edges.EnsureCapacity(memory, ref Nodes, 0, 1);
        *Nodes[NodeIndex.Root] = default; // the root: name 0 (""), no children, self 0
        Nodes.Count = 1;
    }

    /// <summary>Node indices are 32-bit; uint.MaxValue is never handed out.</summary>
    public const uint MaxNodes = uint.MaxValue - 1;

    /// <summary>What <see cref="ReserveNodes"/> allocated room from: undone by <see cref="CancelReservation"/>.</summary>
    public struct Room
    {
        public int NodeSlabs;
        public int Directory;
        public uint Buckets;
    }

    /// <summary>
    /// Claims <paramref name="created"/> nodes against the tree's index space and the store's cap,
    /// and allocates their slab and edge-bucket room, so that the next <paramref name="created"/>
    /// <see cref="AddChild"/> calls cannot fail. Throws with nothing claimed and nothing allocated.
    /// </summary>
    public Room ReserveNodes(StoreRoot* root, long created)
    {
        var mark = new Room { NodeSlabs = Nodes.SlabCount, Directory = Nodes.DirectoryCapacity, Buckets = Edges.BucketCount };
        if ((ulong)Nodes.Count + (ulong)created > MaxNodes)
            throw new StoreLimitExceededException(StoreLimit.NodeIndexSpace, MaxNodes,
                $"{created} new nodes are needed but the tree already holds {Nodes.Count} of the {MaxNodes} that 32-bit node indices can address");
        long after = Interlocked.Add(ref root->NodeCount, created);
        if (after > root->MaxNodes)
        {
            Interlocked.Add(ref root->NodeCount, -created);
            throw new StoreLimitExceededException(StoreLimit.Nodes, root->MaxNodes,
                $"{created} new nodes would take the store to {after} nodes, over TreeStoreOptions.MaxNodes = {root->MaxNodes}");
        }
        try
        {
            ulong needed = (ulong)Nodes.Count + (ulong)created;
            Nodes.EnsureCapacity(&root->Memory, needed);
            Edges.EnsureCapacity(&root->Memory, ref Nodes, Nodes.Count, needed);
        }
        catch
        {
            ReleaseRoom(&root->Memory, mark);
            Interlocked.Add(ref root->NodeCount, -created);
            throw;
        }
        return mark;
    }

    /// <summary>Returns a reservation that will not be used, and frees the room it allocated, so a
    /// refused write leaves the store's bytes as they were.</summary>
    public void CancelReservation(StoreRoot* root, long created, Room mark)
    {
        ReleaseRoom(&root->Memory, mark);
        Interlocked.Add(ref root->NodeCount, -created);
    }

    private void ReleaseRoom(NativeAllocator* memory, Room mark)
    {
        Edges.RestoreCapacity(memory, ref Nodes, Nodes.Count, mark.Buckets);
        Nodes.TrimSlabs(memory, mark.NodeSlabs, mark.Directory);
    }

    /// <summary>
    /// Appends a child named <paramref name="symbol"/> under <paramref name="parent"/>: pushed at the
    /// head of the parent's child list and of its edge bucket. Room must have been reserved.
    /// Invariant kept: a node's index is greater than its parent's.
    /// </summary>
    public NodeIndex AddChild(NodeIndex parent, SymbolId symbol)
    {
        var index = new NodeIndex(Nodes.Count);
        Debug.Assert(index.Value < Nodes.Capacity, "AddChild without ReserveNodes");
        Debug.Assert(parent.Value < index.Value);
        Node* node = Nodes[index];
        Node* parentNode = Nodes[parent];
        *node = default;
        node->Symbol = symbol;
        node->Parent = parent;
        node->NextSibling = parentNode->FirstChild;
        parentNode->FirstChild = index;
        Edges.Add(ref Nodes, index);
        Nodes.Count++;
        return index;
    }

    /// <summary>
    /// Appends a copy of <paramref name="source"/>, node <c>Nodes.Count</c> of a tree being copied whole into this tree,
    /// which held only its root when the copy began (<c>TreeMerger</c>'s copy path): the index is the source's, so its
    /// parent, first-child and next-sibling links stay true as they are; only the name is the mapped one. Room must have
    /// been reserved. The root's <c>FirstChild</c> is the caller's to set once every node is in.
    /// </summary>
    public void AppendCopy(Node* source, SymbolId symbol)
    {
        var index = new NodeIndex(Nodes.Count);
        Debug.Assert(index.Value < Nodes.Capacity, "AppendCopy without ReserveNodes");
        Debug.Assert(source->Parent.Value < index.Value);
        Node* node = Nodes[index];
        node->Self = source->Self;
        node->Symbol = symbol;
        node->Parent = source->Parent;
        node->FirstChild = source->FirstChild;
        node->NextSibling = source->NextSibling;
        Edges.Add(ref Nodes, index); // sets NextInBucket
        Nodes.Count++;
    }

    public void Free(NativeAllocator* memory)
    {
        IterationPlan.Free(memory, (IterationPlan*)Plan);
        Plan = 0;
        CachedTotals.Free(memory, (CachedTotals*)Totals);
        Totals = 0;
        Nodes.Free(memory);
        Edges.Free(memory);
        Cache.Free(memory);
    }

    /// <summary>The tree's total for a handle of <paramref name="generation"/>, without the lock: one
    /// aligned 8-byte word (never torn), then the generation re-checked (Remove increments it: unchanged
    /// since the lookup means the value is this tree's).</summary>
    public ulong ReadTotal(uint generation)
    {
        ulong total = Volatile.Read(ref Total);
        if (Volatile.Read(ref Live) == 0 || Volatile.Read(ref Generation) != generation) ThrowIfStale(generation);
        return total;
    }

    /// <summary>The tree's write version (<see cref="TreeLock.Version"/>) for a handle of <paramref name="generation"/>,
    /// without the lock, then the generation re-checked as in <see cref="ReadTotal"/>.</summary>
    public ulong ReadVersion(uint generation)
    {
        ulong version = Lock.Version;
        if (Volatile.Read(ref Live) == 0 || Volatile.Read(ref Generation) != generation) ThrowIfStale(generation);
        return version;
    }

    /// <summary>The tree's node count (root included) for a handle of <paramref name="generation"/>, without the lock.</summary>
    public long ReadNodeCount(uint generation)
    {
        long count = Volatile.Read(ref Nodes.Count);
        if (Volatile.Read(ref Live) == 0 || Volatile.Read(ref Generation) != generation) ThrowIfStale(generation);
        return count;
    }

    /// <summary>Tests only: the lock's state (−1 = write-held, else readers) and waiting writers.</summary>
    public readonly (int State, int WaitingWriters) LockStateForTests => Lock.StateForTests;

    /// <summary>Tests only: the lock's write version, as if that many writes had happened.</summary>
    public void SetLockVersionForTests(ulong version) => Lock.SetVersionForTests(version);

    /// <summary>Throws unless the slot still holds the tree a handle of <paramref name="generation"/> refers to.
    /// Call it with the tree's lock held (read or write): Remove changes both fields under the write lock.</summary>
    public readonly void ThrowIfStale(uint generation)
    {
        if (Live == 0 || Generation != generation)
            ThrowHelper.StaleTree();
    }
}
