using System.Buffers;

namespace ProfileArena.Formats;

/// <summary>
/// The pool of the decoder's tables, one per element type (<see cref="RetainingArrayPool{T}"/>: not
/// <see cref="ArrayPool{T}.Shared"/>, which drops its arrays at gen2 collections under medium memory load, so a
/// megabyte table would be allocated on the Large Object Heap again). Bounded: at most 8 arrays per power-of-two
/// length and none above 4 M elements (a table that large is allocated for its profile and dropped), so each
/// element type's pool holds at most 8 × 8 M elements; what all of them hold is <see cref="RetainingArrayPools.RetainedBytes"/>.
/// </summary>
internal static class TablePool<T>
{
    public static readonly RetainingArrayPool<T> Arrays = new(maxArraysPerSize: 8, maxRetainedLength: 1 << 22);
}

/// <summary>
/// An append-only list whose array is rented from <see cref="TablePool{T}"/>: the pprof decoder's
/// tables of a megabyte profile (strings, samples, lines) are each past the Large Object Heap threshold, and a
/// server decoding such profiles at every push must not allocate them anew each time. Dispose returns the array.
/// </summary>
internal sealed class PooledList<T> : IDisposable
{
    private T[] _items = TablePool<T>.Arrays.Rent(16);

    public int Count { get; private set; }

    public T this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)Count, nameof(index));
            return _items[index];
        }
    }

    public void Add(T item)
    {
        if (Count == _items.Length) TablePool<T>.Arrays.Grow(ref _items, Count, _items.Length * 2);
        _items[Count++] = item;
    }

    /// <summary>Appends <paramref name="items"/> (one growth at most).</summary>
    public void AddRange(ReadOnlySpan<T> items)
    {
        if (items.Length > _items.Length - Count)
            TablePool<T>.Arrays.Grow(ref _items, Count, (int)Math.Min(Array.MaxLength, Math.Max(_items.Length * 2L, (long)Count + items.Length)));
        items.CopyTo(_items.AsSpan(Count));
        Count += items.Length;
    }

    /// <summary>Drops the items from <paramref name="count"/> on (keeps the array).</summary>
    public void Truncate(int count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)count, (uint)Count, nameof(count));
        Count = count;
    }

    public ReadOnlySpan<T> AsSpan() => _items.AsSpan(0, Count);

    public ReadOnlySpan<T> AsSpan(int start, int length) => _items.AsSpan(0, Count).Slice(start, length);

    /// <summary>Items already added, to change in place (valid until the next add).</summary>
    public Span<T> AsWritableSpan(int start, int length) => _items.AsSpan(0, Count).Slice(start, length);

    public void Dispose()
    {
        T[] items = _items;
        _items = [];
        Count = 0;
        if (items.Length > 0) TablePool<T>.Arrays.Return(items);
    }
}

/// <summary>
/// A map from pprof ids (any <see cref="ulong"/>) to values over arrays rented from <see cref="TablePool{T}"/> (see
/// <see cref="PooledList{T}"/> for why). Setting an id again replaces its value, as a <see cref="Dictionary{TKey, TValue}"/>
/// indexer does. Two layouts, one at a time: <em>dense</em> while the ids stay small next to the count (pprof writers
/// number locations and functions 1, 2, 3, …): an id is its own slot, no hashing or probing, and growing is a copy
/// (hashing and rehashing were 12 % of a push's decode); <em>hashed</em> once an id is out of that range: open
/// addressing with linear probing. Dense holds at most 2 × (4 × count + 64) slots, hashed at most 4 × count, so a
/// hostile id (2^63) costs no more memory than any other.
/// </summary>
internal sealed class PooledIdMap<TValue> : IDisposable
{
    private ulong[] _keys = [];
    private TValue[] _values = [];
    private bool[] _used = [];
    private int _count, _mask = -1;
    private bool _dense = true;

    public int Count => _count;

    public TValue this[ulong id]
    {
        set
        {
            int slot = _dense ? DenseSlot(id) : -1;
            if (slot < 0)
            {
                if ((_count + 1) * 2L > _mask + 1L) Grow(_mask + 1 == 0 ? 64 : (_mask + 1) * 2);
                slot = Find(id);
            }
            if (!_used[slot])
            {
                _used[slot] = true;
                _keys[slot] = id;
                _count++;
            }
            _values[slot] = value;
        }
    }

    /// <summary>The slot holding <paramref name="id"/>, for <see cref="ValueAt"/>; false when the map has no such id.</summary>
    public bool TryGetSlot(ulong id, out int slot)
    {
        if (_dense)
        {
            slot = id < (ulong)(_mask + 1) ? (int)id : -1;
            return slot >= 0 && _used[slot];
        }
        slot = _count > 0 ? Find(id) : -1;
        return slot >= 0 && _used[slot];
    }

    /// <summary>The value in <paramref name="slot"/> (from <see cref="TryGetSlot"/>, valid until the next set), to read or change in place.</summary>
    public ref TValue ValueAt(int slot) => ref _values[slot];

    public bool TryGetValue(ulong id, out TValue value)
    {
        if (TryGetSlot(id, out int slot))
        {
            value = _values[slot];
            return true;
        }
        value = default!;
        return false;
    }

    /// <summary>Dense layout: <paramref name="id"/>'s slot, growing the table when the id is still small next to the
    /// count; −1 after turning the map into the hashed layout (the id is too far out for a table of this count).</summary>
    private int DenseSlot(ulong id)
    {
        if (id < (ulong)(_mask + 1)) return (int)id;
        if (id < 4UL * (ulong)_count + 64)
        {
            Grow((int)Math.Max(64, Math.Max(2L * (_mask + 1), (long)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)id + 1))));
            return (int)id;
        }
        _dense = false;
        Grow(Math.Max(64, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)(_count + 1) * 4)));
        return -1;
    }

    /// <summary>Hashed layout: the slot holding <paramref name="id"/>, or the free slot where it belongs (the table is never full).</summary>
    private int Find(ulong id)
    {
        // Fibonacci hashing spreads strided ids and random ones alike.
        int slot = (int)((id * 0x9E3779B97F4A7C15UL) >> 33) & _mask;
        while (_used[slot] && _keys[slot] != id) slot = (slot + 1) & _mask;
        return slot;
    }

    /// <summary>Moves the entries into tables of at least <paramref name="size"/> slots, in the current layout.</summary>
    private void Grow(int size)
    {
        ulong[] keys = _keys;
        TValue[] values = _values;
        bool[] used = _used;
        int oldSize = _mask + 1;
        _keys = TablePool<ulong>.Arrays.Rent(size);
        _values = TablePool<TValue>.Arrays.Rent(size);
        _used = TablePool<bool>.Arrays.Rent(size);
        // A rented array may be longer than asked: use a power of two that fits, and clear what is used.
        size = 1 << (31 - System.Numerics.BitOperations.LeadingZeroCount((uint)Math.Min(Math.Min(_keys.Length, _values.Length), _used.Length)));
        _used.AsSpan(0, size).Clear();
        _mask = size - 1;
        if (_dense)
        {
            // ids are their slots: the old table is the start of the new one.
            if (oldSize > 0)
            {
                used.AsSpan(0, oldSize).CopyTo(_used);
                keys.AsSpan(0, oldSize).CopyTo(_keys);
                values.AsSpan(0, oldSize).CopyTo(_values);
            }
        }
        else
        {
            _count = 0;
            for (int i = 0; i < oldSize; i++)
            {
                if (!used[i]) continue;
                int slot = Find(keys[i]);
                _used[slot] = true;
                _keys[slot] = keys[i];
                _values[slot] = values[i];
                _count++;
            }
        }
        Return(keys, values, used);
    }

    private static void Return(ulong[] keys, TValue[] values, bool[] used)
    {
        if (keys.Length > 0) TablePool<ulong>.Arrays.Return(keys);
        if (values.Length > 0) TablePool<TValue>.Arrays.Return(values, clearArray: System.Runtime.CompilerServices.RuntimeHelpers.IsReferenceOrContainsReferences<TValue>());
        if (used.Length > 0) TablePool<bool>.Arrays.Return(used);
    }

    public void Dispose()
    {
        Return(_keys, _values, _used);
        _keys = [];
        _values = [];
        _used = [];
        _count = 0;
        _mask = -1;
        _dense = true;
    }
}
