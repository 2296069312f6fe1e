namespace ProfileArena.Native;

/// <summary>Everything one tree owns, in native memory (one record per tree in the store's tree list).</summary>
internal unsafe struct TreeRecord
{
    public TreeLock Lock;
    public NodeSlabs Nodes;
    public EdgeIndex Edges;
    public PathCache Cache;

    public readonly long AllocatedBytes => Nodes.AllocatedBytes + Edges.AllocatedBytes + Cache.AllocatedBytes;

    /// <summary>Creates the root (node 0, empty name). Throws before anything is visible.</summary>
    public void Init(NativeAllocator* memory)
    {
        Nodes.EnsureCapacity(memory, 1);
        Edges.EnsureCapacity(memory, ref Nodes, 0, 1);
        Nodes.Count = 1; // node 0 is zeroed: name 0 (""), no children, total 0
    }

    public void Free(NativeAllocator* memory)
    {
        Nodes.Free(memory);
        Edges.Free(memory);
        Cache.Free(memory);
    }
}
