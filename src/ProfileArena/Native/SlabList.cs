using System.Diagnostics;
using System.Numerics;

namespace ProfileArena.Native;

/// <summary>
/// An append-only list of unmanaged items stored in slabs that never move, addressed by a 32-bit index.
/// </summary>
/// <remarks>
/// Slab sizes: slab s holds 64·2^s items for s &lt; 8 (64 … 8192), then every further slab holds 8192.
/// Small lists (a tree with ten nodes) cost one 64-item slab, large lists waste at most one
/// 8192-item slab, and growth never copies an item. Index → (slab, offset) is a Log2 and two
/// shifts for the first 16,320 items and a shift and a mask after that.
/// Items are zeroed when their slab is allocated, unless the owner writes every item in full first (nodes).
/// </remarks>
internal unsafe struct SlabList<T> where T : unmanaged
{
    private const int FirstShift = 6;                 // first slab: 64 items
    private const int MaxShift = 13;                  // largest slab: 8192 items
    private const int GrowingSlabs = MaxShift - FirstShift + 1;                  // 8 slabs of doubling size
    private const uint GrowingCapacity = ((1u << GrowingSlabs) - 1) << FirstShift; // 16,320 items

    private PointerDirectory _slabs;
    private int _slabCount;
    private ulong _capacity;
    private bool _borrowed;   // slabs point into memory owned elsewhere (a mapped snapshot): never freed here

    /// <summary>Items that can be addressed without allocating.</summary>
    public readonly ulong Capacity => _capacity;

    public T* this[uint index]
    {
        get
        {
            Debug.Assert(index < _capacity, "index beyond allocated slabs");
            int slab;
            uint offset;
            if (index < GrowingCapacity)
            {
                uint v = (index >> FirstShift) + 1;
                slab = BitOperations.Log2(v);
                offset = index - ((((1u << slab) - 1)) << FirstShift);
            }
            else
            {
                uint j = index - GrowingCapacity;
                slab = GrowingSlabs + (int)(j >> MaxShift);
                offset = j & ((1u << MaxShift) - 1);
            }
            return (T*)_slabs[slab] + offset;
        }
    }

    public static uint SlabItems(int slab) => slab < GrowingSlabs ? 64u << slab : 1u << MaxShift;

    /// <summary>The first index of the slab holding <paramref name="index"/>: items from there to <paramref name="index"/>
    /// are contiguous in memory (a backward scan steps a pointer through them).</summary>
    public static uint SlabStart(uint index)
    {
        if (index < GrowingCapacity) return ((1u << BitOperations.Log2((index >> FirstShift) + 1)) - 1) << FirstShift;
        return index - ((index - GrowingCapacity) & ((1u << MaxShift) - 1));
    }

    /// <summary>Allocates slabs until <paramref name="count"/> items are addressable. Throws before changing anything visible.</summary>
    /// <remarks><paramref name="zeroed"/> false leaves new items' bytes undefined: for lists whose every
    /// item is written in full before it is read or saved (nodes).</remarks>
    public void EnsureCapacity(NativeAllocator* memory, ulong count, bool zeroed = true)
    {
        while (_capacity < count)
        {
            uint items = SlabItems(_slabCount);
            _slabs.EnsureSlot(memory, _slabCount);
            void* slab = NativeAllocator.Alloc(memory, (nuint)items * (nuint)sizeof(T), zeroed);
            _slabs.Set(_slabCount, slab);
            _slabCount++;
            _capacity += items;
        }
    }

    public readonly int SlabCount => _slabCount;

    /// <summary>
    /// Frees the slabs from <paramref name="slabCount"/> on (room a refused write allocated but never
    /// used; no item there is counted or read). The directory keeps its size unless
    /// <paramref name="directoryCapacity"/> is given: only when no lock-free reader can hold it.
    /// </summary>
    public void TrimSlabs(NativeAllocator* memory, int slabCount, int directoryCapacity = -1)
    {
        Debug.Assert(!_borrowed);
        while (_slabCount > slabCount)
        {
            _slabCount--;
            uint items = SlabItems(_slabCount);
            NativeAllocator.Free(memory, _slabs[_slabCount], (nuint)items * (nuint)sizeof(T));
            _slabs.Set(_slabCount, null);
            _capacity -= items;
        }
        if (directoryCapacity >= 0) _slabs.ShrinkTo(memory, directoryCapacity);
    }

    public readonly int DirectoryCapacity => _slabs.Capacity;

    /// <summary>Start of slab <paramref name="s"/> (s &lt; <see cref="SlabCount"/>).</summary>
    public T* Slab(int s) => (T*)_slabs[s];

    /// <summary>
    /// Makes an empty list address <paramref name="count"/> items stored contiguously at
    /// <paramref name="items"/> (memory the list does not own): each slab pointer points into that
    /// run. Only the directory is allocated. The list must never grow afterwards.
    /// </summary>
    public void Borrow(NativeAllocator* memory, T* items, ulong count)
    {
        Debug.Assert(_slabCount == 0);
        _borrowed = true;
        ulong start = 0;
        while (_capacity < count)
        {
            uint n = SlabItems(_slabCount);
            _slabs.EnsureSlot(memory, _slabCount);
            _slabs.Set(_slabCount, items + start);
            start += n;
            _slabCount++;
            _capacity += n;
        }
    }

    public void Free(NativeAllocator* memory)
    {
        if (_borrowed) _slabCount = 0;
        _borrowed = false;
        for (int s = 0; s < _slabCount; s++)
            NativeAllocator.Free(memory, _slabs[s], (nuint)SlabItems(s) * (nuint)sizeof(T));
        _slabs.Free(memory);
        _slabCount = 0;
        _capacity = 0;
    }
}
