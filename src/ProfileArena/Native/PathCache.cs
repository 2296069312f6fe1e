using System.Diagnostics;

namespace ProfileArena.Native;

/// <summary>
/// The previous key a tree's writer resolved: its bytes, where each segment ends and which node
/// each segment resolved to. The next insert compares its key with these bytes (a vectorised
/// common-prefix scan) and re-resolves only the segments after the shared prefix; the take-home
/// workload re-inserts every prefix, so this turns 25 M lookups per tree into 100 k.
/// </summary>
/// <remarks>
/// Invariant while <see cref="Valid"/>: Key[0..KeyLength) is the last successfully inserted key,
/// Depth is its segment count, SegmentEnds[i] is the offset of the ';' after segment i (KeyLength
/// for the last), and PathNodes[i] is the node segment i resolved to. A failed insert clears
/// Valid because the arrays may then hold a half-written path. Symbols is scratch for the insert
/// in progress. All arrays belong to the tree and are used only under its write lock.
/// </remarks>
internal unsafe struct PathCache
{
    public byte* Key;
    public int KeyLength;
    public int KeyCapacity;
    public int* SegmentEnds;
    public NodeIndex* PathNodes;
    public SymbolId* Symbols;
    public int Depth;
    public int DepthCapacity;
    public bool Valid;

    public void EnsureKeyCapacity(NativeAllocator* memory, int length)
    {
        if (length <= KeyCapacity) return;
        int capacity = Math.Max(256, Math.Max(length, KeyCapacity * 2));
        var key = (byte*)NativeAllocator.Alloc(memory, (nuint)capacity, zeroed: false);
        if (Key != null)
        {
            Buffer.MemoryCopy(Key, key, capacity, KeyLength);
            NativeAllocator.Free(memory, Key, (nuint)KeyCapacity);
        }
        Key = key;
        KeyCapacity = capacity;
    }

    public void EnsureDepthCapacity(NativeAllocator* memory, int depth)
    {
        if (depth <= DepthCapacity) return;
        int capacity = Math.Max(64, Math.Max(depth, DepthCapacity * 2));
        var ends = (int*)NativeAllocator.Alloc(memory, (nuint)capacity * sizeof(int), zeroed: false);
        NodeIndex* nodes;
        SymbolId* symbols;
        try
        {
            nodes = (NodeIndex*)NativeAllocator.Alloc(memory, (nuint)capacity * (nuint)sizeof(NodeIndex), zeroed: false);
            try
            {
                symbols = (SymbolId*)NativeAllocator.Alloc(memory, (nuint)capacity * (nuint)sizeof(SymbolId), zeroed: false);
            }
            catch
            {
                NativeAllocator.Free(memory, nodes, (nuint)capacity * (nuint)sizeof(NodeIndex));
                throw;
            }
        }
        catch
        {
            NativeAllocator.Free(memory, ends, (nuint)capacity * sizeof(int));
            throw;
        }
        if (Depth > 0)
        {
            Debug.Assert(Depth <= DepthCapacity);
            Buffer.MemoryCopy(SegmentEnds, ends, (long)capacity * sizeof(int), (long)Depth * sizeof(int));
            Buffer.MemoryCopy(PathNodes, nodes, (long)capacity * sizeof(NodeIndex), (long)Depth * sizeof(NodeIndex));
        }
        FreeDepthArrays(memory);
        SegmentEnds = ends;
        PathNodes = nodes;
        Symbols = symbols;
        DepthCapacity = capacity;
    }

    /// <summary>
    /// After a refused insert: gives back the room the insert grew (the cache is invalid, so contents
    /// do not matter), re-allocating the capacities it had before, so NativeBytes is as before.
    /// </summary>
    public void RestoreCapacity(NativeAllocator* memory, int keyCapacity, int depthCapacity)
    {
        Debug.Assert(!Valid);
        if (KeyCapacity > keyCapacity)
        {
            byte* key = keyCapacity == 0 ? null : (byte*)NativeAllocator.AllocRestoring(memory, (nuint)keyCapacity, zeroed: false);
            NativeAllocator.Free(memory, Key, (nuint)KeyCapacity);
            Key = key;
            KeyCapacity = keyCapacity;
            KeyLength = 0;
        }
        if (DepthCapacity > depthCapacity)
        {
            int* ends = null;
            NodeIndex* nodes = null;
            SymbolId* symbols = null;
            if (depthCapacity > 0)
            {
                ends = (int*)NativeAllocator.AllocRestoring(memory, (nuint)depthCapacity * sizeof(int), zeroed: false);
                nodes = (NodeIndex*)NativeAllocator.AllocRestoring(memory, (nuint)depthCapacity * (nuint)sizeof(NodeIndex), zeroed: false);
                symbols = (SymbolId*)NativeAllocator.AllocRestoring(memory, (nuint)depthCapacity * (nuint)sizeof(SymbolId), zeroed: false);
            }
            FreeDepthArrays(memory);
            SegmentEnds = ends;
            PathNodes = nodes;
            Symbols = symbols;
            DepthCapacity = depthCapacity;
            Depth = 0;
        }
    }

    private void FreeDepthArrays(NativeAllocator* memory)
    {
        NativeAllocator.Free(memory, SegmentEnds, (nuint)DepthCapacity * sizeof(int));
        NativeAllocator.Free(memory, PathNodes, (nuint)DepthCapacity * (nuint)sizeof(NodeIndex));
        NativeAllocator.Free(memory, Symbols, (nuint)DepthCapacity * (nuint)sizeof(SymbolId));
    }

    public void Free(NativeAllocator* memory)
    {
        FreeDepthArrays(memory);
        NativeAllocator.Free(memory, Key, (nuint)KeyCapacity);
        this = default;
    }
}
