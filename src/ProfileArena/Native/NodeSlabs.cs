namespace ProfileArena.Native;

/// <summary>A tree's nodes: a <see cref="SlabList{T}"/> of <see cref="Node"/> plus the count in use.</summary>
internal unsafe struct NodeSlabs
{
    private SlabList<Node> _slabs;
    public uint Count;

    public Node* this[uint index] => _slabs[index];
    public Node* this[NodeIndex index] => _slabs[index.Value];

    public readonly ulong Capacity => _slabs.Capacity;
    public readonly long AllocatedBytes => _slabs.AllocatedBytes;

    public void EnsureCapacity(NativeAllocator* memory, ulong count) => _slabs.EnsureCapacity(memory, count);

    public void Free(NativeAllocator* memory)
    {
        _slabs.Free(memory);
        Count = 0;
    }
}
