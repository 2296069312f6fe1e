using System.Diagnostics;

namespace ProfileArena.Native;

/// <summary>
/// A growable array of slab pointers that readers may use while a writer grows it.
/// </summary>
/// <remarks>
/// Growth allocates a directory twice as large, copies the pointers, publishes it with a release
/// write, and keeps the old directory on a "retired" chain instead of freeing it: a reader that
/// loaded the old directory pointer (for example an Iterate reading symbol names while another
/// tree's writer interns new ones) still reads valid memory, and every slab it can reach is in
/// both directories. Retired directories are freed with the owner; together they are never larger
/// than the live one (sizes halve down the chain), which is a few bytes per slab.
/// Only the slab pointers move; the slabs themselves never do.
/// </remarks>
internal unsafe struct PointerDirectory
{
    private struct Block
    {
        public Block* Retired;
        public nint Capacity;
        // followed by Capacity pointers

        public static void** Slots(Block* b) => (void**)(b + 1);
        public static nuint SizeOf(nint capacity) => (nuint)(sizeof(Block) + capacity * sizeof(void*));
    }

    // A Block*, kept as nint so it can be published and read with Volatile.
    private nint _current;

    private readonly Block* Current => (Block*)_current;

    public readonly int Capacity => _current == 0 ? 0 : (int)Current->Capacity;

    /// <summary>Slot <paramref name="i"/> of the published directory. Caller guarantees i &lt; the count it has seen published.</summary>
    public void* this[int i]
    {
        get
        {
            Block* b = (Block*)Volatile.Read(ref _current);
            Debug.Assert(b != null && i >= 0 && i < b->Capacity);
            return Block.Slots(b)[i];
        }
    }

    /// <summary>Writes slot i (writer only, under the owner's write lock). The slot must be below capacity.</summary>
    public readonly void Set(int i, void* slab)
    {
        Debug.Assert(_current != 0 && i < Current->Capacity);
        Volatile.Write(ref *(nint*)&Block.Slots(Current)[i], (nint)slab);
    }

    /// <summary>Makes room for slot index <paramref name="i"/>, growing (and retiring the old block) if needed.</summary>
    public void EnsureSlot(NativeAllocator* memory, int i)
    {
        if (i < Capacity) return;
        nint capacity = Math.Max(16, Capacity);
        while (capacity <= i) capacity *= 2;
        var grown = (Block*)NativeAllocator.Alloc(memory, Block.SizeOf(capacity));
        grown->Capacity = capacity;
        Block* old = Current;
        if (old != null)
        {
            Buffer.MemoryCopy(Block.Slots(old), Block.Slots(grown), capacity * sizeof(void*), old->Capacity * sizeof(void*));
            grown->Retired = old;
        }
        Volatile.Write(ref _current, (nint)grown);
    }

    /// <summary>Frees every directory block (not the slabs: the owner frees those first).</summary>
    /// <summary>
    /// Undoes growth past <paramref name="capacity"/> slots by going back to the retired blocks (their
    /// slots below their capacity are the live ones). Only for a directory no lock-free reader can hold
    /// (a tree's node slabs, under its write lock).
    /// </summary>
    public void ShrinkTo(NativeAllocator* memory, int capacity)
    {
        Block* b = Current;
        while (b != null && b->Capacity > capacity && b->Retired != null && b->Retired->Capacity >= capacity)
        {
            Block* retired = b->Retired;
            Volatile.Write(ref _current, (nint)retired);
            NativeAllocator.Free(memory, b, Block.SizeOf(b->Capacity));
            b = retired;
        }
    }

    public void Free(NativeAllocator* memory)
    {
        Block* b = Current;
        while (b != null)
        {
            Block* next = b->Retired;
            NativeAllocator.Free(memory, b, Block.SizeOf(b->Capacity));
            b = next;
        }
        _current = 0;
    }
}
