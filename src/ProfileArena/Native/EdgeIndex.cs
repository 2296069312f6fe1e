using System.Diagnostics;
using System.Numerics;

namespace ProfileArena.Native;

/// <summary>
/// Per-tree hash index of edges (parent, symbol) → child, with separate chaining through
/// <see cref="Node.NextInBucket"/>: the precedent is pyroscope's stacktrace tree edge index.
/// </summary>
/// <remarks>
/// Buckets hold the head node index (0 = empty; the root is never a child). The bucket count is a
/// power of two and at least the node count, so chains average under one node and a lookup is
/// O(1) whatever the fan-out (a node with 100,000 children costs what a node with one does).
/// The key is mixed with Fibonacci hashing (multiply by 2^64/φ, keep the top bits), the standard
/// multiplicative hash for integer keys. Only writers (under the tree's write lock) use it.
/// </remarks>
internal unsafe struct EdgeIndex
{
    // Past 2^31 nodes chains simply grow longer than one; the table stops doubling.
    private const uint MaxBuckets = 1u << 31;

    private NodeIndex* _buckets; // chain heads, NodeIndex.None = empty
    private int _shift;     // 64 − log2(bucket count)
    private uint _count;    // bucket count

    private readonly uint Bucket(NodeIndex parent, SymbolId symbol)
        => (uint)(((((ulong)parent.Value << 32) | symbol.Value) * 0x9E3779B97F4A7C15UL) >> _shift);

    public readonly NodeIndex Find(ref NodeSlabs nodes, NodeIndex parent, SymbolId symbol)
    {
        NodeIndex n = _buckets[Bucket(parent, symbol)];
        while (!n.IsNone)
        {
            Node* node = nodes[n];
            if (node->Parent == parent && node->Symbol == symbol) return n;
            n = node->NextInBucket;
        }
        return NodeIndex.None;
    }

    public readonly void Add(ref NodeSlabs nodes, NodeIndex child)
    {
        Node* node = nodes[child];
        ref NodeIndex head = ref _buckets[Bucket(node->Parent, node->Symbol)];
        node->NextInBucket = head;
        head = child;
    }

    /// <summary>Undoes the most recent <see cref="Add"/> of <paramref name="child"/> (it is the head of its chain).</summary>
    public readonly void RemoveNewest(ref NodeSlabs nodes, NodeIndex child)
    {
        Node* node = nodes[child];
        ref NodeIndex head = ref _buckets[Bucket(node->Parent, node->Symbol)];
        Debug.Assert(head == child);
        head = node->NextInBucket;
    }

    /// <summary>Makes sure <paramref name="nodeCount"/> nodes fit at load ≤ 1, re-chaining nodes 1..existing−1.</summary>
    public void EnsureCapacity(NativeAllocator* memory, ref NodeSlabs nodes, uint existing, ulong nodeCount)
    {
        if (nodeCount <= _count || _count == MaxBuckets) return;
        ulong wanted = Math.Min(MaxBuckets, Math.Max(64UL, BitOperations.RoundUpToPowerOf2(nodeCount)));
        var buckets = (NodeIndex*)NativeAllocator.Alloc(memory, (nuint)wanted * (nuint)sizeof(NodeIndex)); // zeroed: all empty
        if (_buckets != null) NativeAllocator.Free(memory, _buckets, (nuint)_count * (nuint)sizeof(NodeIndex));
        _buckets = buckets;
        _count = (uint)wanted;
        _shift = 64 - BitOperations.Log2(wanted);
        for (uint i = 1; i < existing; i++) Add(ref nodes, new NodeIndex(i));
    }

    public readonly uint BucketCount => _count;

    /// <summary>After a refused write: back to <paramref name="bucketCount"/> buckets (the size before
    /// it grew), re-chaining nodes 1..existing−1, so the store's bytes are as before.</summary>
    public void RestoreCapacity(NativeAllocator* memory, ref NodeSlabs nodes, uint existing, uint bucketCount)
    {
        if (_count <= bucketCount) return;
        var buckets = (NodeIndex*)NativeAllocator.AllocRestoring(memory, (nuint)bucketCount * (nuint)sizeof(NodeIndex), zeroed: true);
        NativeAllocator.Free(memory, _buckets, (nuint)_count * (nuint)sizeof(NodeIndex));
        _buckets = buckets;
        _count = bucketCount;
        _shift = 64 - BitOperations.Log2(bucketCount);
        for (uint i = 1; i < existing; i++) Add(ref nodes, new NodeIndex(i));
    }

    public void Free(NativeAllocator* memory)
    {
        if (_buckets != null) NativeAllocator.Free(memory, _buckets, (nuint)_count * (nuint)sizeof(NodeIndex));
        _buckets = null;
        _count = 0;
    }
}
