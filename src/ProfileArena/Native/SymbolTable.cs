using System.Runtime.CompilerServices;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.IO.Hashing;
using System.Numerics;

namespace ProfileArena.Native;

/// <summary>Where one interned name lives: 8 bytes per symbol.</summary>
internal struct SymbolEntry
{
    public uint Position8; // ByteArena position (8-byte units)
    public uint Length;
}

/// <summary>
/// Interns frame names once per store: name bytes in a <see cref="ByteArena"/>, one
/// <see cref="SymbolEntry"/> per id in a <see cref="SlabList{T}"/>, and an open-addressing
/// (linear probing) table of ids keyed by XxHash3 of the name.
/// </summary>
/// <remarks>
/// Slots hold id+1 (0 = empty) and a parallel array holds one control byte per slot: 0 for empty,
/// else 0x80 | the hash's top 7 bits (the idea of SwissTable's control bytes). A probe reads the
/// control bytes — consecutive slots share a cache line — and touches an entry and its name only
/// when the 7-bit tag matches, so a miss costs about one cache miss instead of two per occupied
/// slot passed (all take-home names are 80 bytes long: length alone never rejects a candidate).
/// The table doubles before its load passes 3/4. Rehash re-inserts
/// ids in ascending order, so "later id" always means "inserted later" and the most recent ids can
/// be removed by emptying their slots in reverse order (no tombstones): that is how
/// <see cref="Rollback"/> undoes a batch that failed half-way. Entries and names never move, so
/// readers may resolve names while a writer interns; finds and interning run under the store's
/// store lock because rehash frees the old slot array.
/// </remarks>
internal unsafe struct SymbolTable
{
    private ByteArena _names;
    private SlabList<SymbolEntry> _entries;
    private uint* _slots;
    private byte* _tags;
    private uint _slotMask;
    private uint _count;
    private long _nameBytes;
    // While a batch (Save … Commit/Rollback) runs, the slot table it outgrew is kept, so a rollback
    // restores it in O(batch) instead of rebuilding O(count) (a client refused again and again at the
    // doubling point must not cost a full rehash each time).
    private uint* _stashSlots;
    private byte* _stashTags;
    private uint _stashMask;
    private uint _stashCount;   // ids the stashed table holds
    private bool _inBatch;

    public struct Checkpoint
    {
        public uint Count;
        public int EntrySlabs;
        public uint SlotMask;
        public long NameBytes;
        public ByteArena.Checkpoint Names;
    }

    public readonly uint Count => _count;
    public readonly long NameBytes => _nameBytes;

    public void Init(NativeAllocator* memory)
    {
        _names.Init();
        Rehash(memory, 64);
        // Id 0 is the empty name (the root's name, and the name of empty segments).
        Add(memory, ReadOnlySpan<byte>.Empty, Hash(ReadOnlySpan<byte>.Empty), long.MaxValue);
    }

    public static ulong Hash(ReadOnlySpan<byte> name) => XxHash3.HashToUInt64(name);

    public ReadOnlySpan<byte> Name(SymbolId id)
    {
        Debug.Assert(id.Value < Volatile.Read(ref _count));
        SymbolEntry* e = _entries[id.Value];
        return e->Length == 0 ? default : new ReadOnlySpan<byte>(_names.Resolve(e->Position8), (int)e->Length);
    }

    private static byte Tag(ulong hash) => (byte)(0x80 | (hash >> 57));

    public SymbolId Find(ReadOnlySpan<byte> name, ulong hash)
    {
        byte tag = Tag(hash);
        uint i = (uint)hash & _slotMask;
        while (true)
        {
            byte t = _tags[i];
            if (t == 0) return SymbolId.Missing;
            if (t == tag)
            {
                var id = new SymbolId(_slots[i] - 1);
                if (Name(id).SequenceEqual(name)) return id;
            }
            i = (i + 1) & _slotMask;
        }
    }

    public SymbolId FindOrAdd(NativeAllocator* memory, ReadOnlySpan<byte> name, long maxNameBytes)
    {
        ulong hash = Hash(name);
        SymbolId found = Find(name, hash);
        return found.IsMissing ? Add(memory, name, hash, maxNameBytes) : found;
    }

    /// <summary>Starts a batch of interning that ends with <see cref="Commit"/> or <see cref="Rollback"/> (under the store lock throughout).</summary>
    public Checkpoint Save()
    {
        Debug.Assert(!_inBatch && _stashSlots == null);
        _inBatch = true;
        return new() { Count = _count, EntrySlabs = _entries.SlabCount, SlotMask = _slotMask, NameBytes = _nameBytes, Names = _names.Save() };
    }

    /// <summary>Ends a batch that succeeded: the slot table it outgrew is freed.</summary>
    public void Commit(NativeAllocator* memory)
    {
        FreeStash(memory);
        _inBatch = false;
    }

    private void FreeStash(NativeAllocator* memory)
    {
        if (_stashSlots == null) return;
        NativeAllocator.Free(memory, _stashSlots, (nuint)(_stashMask + 1) * sizeof(uint));
        NativeAllocator.Free(memory, _stashTags, _stashMask + 1);
        _stashSlots = null;
        _stashTags = null;
    }

    /// <summary>
    /// Removes every symbol added since <paramref name="cp"/>, newest first, and gives back the room
    /// they grew (name chunks, entry slabs, a rehashed slot table), so the store's bytes are as before.
    /// </summary>
    public void Rollback(NativeAllocator* memory, Checkpoint cp)
    {
        uint inTable = _count;
        if (_stashSlots != null)
        {
            // The batch doubled the table: go back to the table it outgrew, which holds the ids
            // below the count at that moment.
            Debug.Assert(_stashMask == cp.SlotMask);
            FreeSlots(memory);
            _slots = _stashSlots;
            _tags = _stashTags;
            _slotMask = _stashMask;
            inTable = _stashCount;
            _stashSlots = null;
            _stashTags = null;
        }
        for (uint id = inTable; id-- > cp.Count;)
        {
            uint i = (uint)Hash(Name(new SymbolId(id))) & _slotMask;
            while (_slots[i] != id + 1) i = (i + 1) & _slotMask;
            _slots[i] = 0;
            _tags[i] = 0;
        }
        _inBatch = false;
        Volatile.Write(ref _count, cp.Count);
        _names.Rollback(memory, cp.Names);
        _entries.TrimSlabs(memory, cp.EntrySlabs); // readers see only ids below the count
        _nameBytes = cp.NameBytes;
    }

    /// <summary>Interns a name known to be absent (the caller found it missing under the same lock hold).</summary>
    public SymbolId Add(NativeAllocator* memory, ReadOnlySpan<byte> name, ulong hash, long maxNameBytes)
    {
        if (_nameBytes + name.Length > maxNameBytes)
            throw new StoreLimitExceededException(StoreLimit.SymbolBytes, maxNameBytes,
                $"interning a {name.Length}-byte frame name would take the store's symbol bytes to {_nameBytes + name.Length}, over TreeStoreOptions.MaxSymbolBytes = {maxNameBytes}");
        if (_count >= uint.MaxValue - 1)
            throw new StoreLimitExceededException(StoreLimit.SymbolIdSpace, uint.MaxValue - 1,
                "the store has used every 32-bit symbol id");
        // Everything that can fail (allocations) happens before the symbol becomes visible.
        if ((ulong)(_count + 1) * 4 > (ulong)(_slotMask + 1) * 3)
            Rehash(memory, (_slotMask + 1) * 2);
        _entries.EnsureCapacity(memory, (ulong)_count + 1);
        uint position = _names.Append(memory, name);

        uint id = _count;
        SymbolEntry* e = _entries[id];
        e->Position8 = position;
        e->Length = (uint)name.Length;
        uint i = (uint)hash & _slotMask;
        while (_tags[i] != 0) i = (i + 1) & _slotMask;
        _slots[i] = id + 1;
        _tags[i] = Tag(hash);
        _nameBytes += name.Length;
        Volatile.Write(ref _count, id + 1); // publishes the entry to lock-free readers
        return new SymbolId(id);
    }

    private void Rehash(NativeAllocator* memory, uint slotCount)
    {
        Debug.Assert(BitOperations.IsPow2(slotCount));
        AllocSlots(memory, slotCount, out uint* slots, out byte* tags);
        uint mask = slotCount - 1;
        for (uint id = 0; id < _count; id++)
        {
            ulong hash = Hash(Name(new SymbolId(id)));
            uint i = (uint)hash & mask;
            while (tags[i] != 0) i = (i + 1) & mask;
            slots[i] = id + 1;
            tags[i] = Tag(hash);
        }
        if (_inBatch && _stashSlots == null)
        {
            _stashSlots = _slots; // kept until the batch ends: a rollback goes back to it
            _stashTags = _tags;
            _stashMask = _slotMask;
            _stashCount = _count;
        }
        else
        {
            FreeSlots(memory);
        }
        _slots = slots;
        _tags = tags;
        _slotMask = mask;
    }

    /// <summary>Slot and control arrays for <paramref name="slotCount"/> slots, both or neither.</summary>
    private static void AllocSlots(NativeAllocator* memory, uint slotCount, out uint* slots, out byte* tags)
    {
        slots = (uint*)NativeAllocator.Alloc(memory, (nuint)slotCount * sizeof(uint), zeroed: false);
        try
        {
            tags = (byte*)NativeAllocator.Alloc(memory, slotCount); // zeroed: all slots empty
        }
        catch
        {
            NativeAllocator.Free(memory, slots, (nuint)slotCount * sizeof(uint));
            throw;
        }
    }

    [UnscopedRef] public ref ByteArena Arena => ref _names;
    [UnscopedRef] public ref SlabList<SymbolEntry> Entries => ref _entries;

    /// <summary>
    /// Snapshot load/open: entries 0..count−1 and their names are in place (validated to lie inside
    /// the arena); builds the hash slots and publishes the count. Returns the first id whose name
    /// repeats an earlier one (the table would be ambiguous), or −1.
    /// </summary>
    public long AdoptLoaded(NativeAllocator* memory, uint count, long nameBytes, bool index = true)
    {
        Debug.Assert(_count == 0 && _slots == null);
        _nameBytes = nameBytes;
        Volatile.Write(ref _count, count);
        return index ? BuildIndex(memory) : -1;
    }

    /// <summary>True once the hash slots exist (a store opened from a mapped snapshot builds them on first lookup).</summary>
    public readonly bool HasIndex => _slots != null;

    /// <summary>
    /// Builds the hash slots for ids 0..Count−1 (no slots yet). Returns the first id whose name repeats
    /// an earlier one, or −1; on a repeat the table keeps the earlier id for that name.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per load/verify: skip tier 0
    public long BuildIndex(NativeAllocator* memory)
    {
        uint count = _count;
        uint slotCount = 64;
        while ((ulong)count * 4 > (ulong)slotCount * 3) slotCount *= 2;
        AllocSlots(memory, slotCount, out uint* slots, out byte* tags);
        uint mask = slotCount - 1;
        long duplicate = -1;
        for (uint id = 0; id < count; id++)
        {
            ReadOnlySpan<byte> name = Name(new SymbolId(id));
            ulong hash = Hash(name);
            byte tag = Tag(hash);
            uint i = (uint)hash & mask;
            bool repeated = false;
            while (tags[i] != 0)
            {
                if (tags[i] == tag && Name(new SymbolId(slots[i] - 1)).SequenceEqual(name)) { repeated = true; break; }
                i = (i + 1) & mask;
            }
            if (repeated)
            {
                if (duplicate < 0) duplicate = id;
                continue;
            }
            slots[i] = id + 1;
            tags[i] = tag;
        }
        _slots = slots;
        _tags = tags;
        _slotMask = mask;
        return duplicate;
    }

    private void FreeSlots(NativeAllocator* memory)
    {
        if (_slots == null) return;
        NativeAllocator.Free(memory, _slots, (nuint)(_slotMask + 1) * sizeof(uint));
        NativeAllocator.Free(memory, _tags, _slotMask + 1);
        _slots = null;
        _tags = null;
    }

    public void Free(NativeAllocator* memory)
    {
        FreeStash(memory);
        _names.Free(memory);
        _entries.Free(memory);
        FreeSlots(memory);
        _count = 0;
    }
}
