namespace ProfileArena.Native;

/// <summary>A tree's nodes: a <see cref="SlabList{T}"/> of <see cref="Node"/> plus the count in use.</summary>
internal unsafe struct NodeSlabs
{
    private SlabList<Node> _slabs;
    public uint Count;

    // Addressed by NodeIndex only: a raw uint could be a symbol id, a count or a slot.
    public Node* this[NodeIndex index] => _slabs[index.Value];

    public readonly ulong Capacity => _slabs.Capacity;
    public readonly int SlabCount => _slabs.SlabCount;
    public readonly int DirectoryCapacity => _slabs.DirectoryCapacity;
    // Under the tree's write lock: no reader holds the directory, so its growth is undone too.
    public void TrimSlabs(NativeAllocator* memory, int slabCount, int directoryCapacity) => _slabs.TrimSlabs(memory, slabCount, directoryCapacity);
    public Node* Slab(int s) => _slabs.Slab(s);
    public static uint SlabItems(int s) => SlabList<Node>.SlabItems(s);
    public static uint SlabStart(uint index) => SlabList<Node>.SlabStart(index);
    public void Borrow(NativeAllocator* memory, Node* items, uint count)
    {
        _slabs.Borrow(memory, items, count);
        Count = count;
    }

    // Not zeroed: every node is written in full (AddChild, Init, a load, a truncation) before it counts.
    public void EnsureCapacity(NativeAllocator* memory, ulong count) => _slabs.EnsureCapacity(memory, count, zeroed: false);

    public void Free(NativeAllocator* memory)
    {
        _slabs.Free(memory);
        Count = 0;
    }
}
