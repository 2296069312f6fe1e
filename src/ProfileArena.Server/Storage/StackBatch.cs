using System.Buffers;
using ProfileArena.Server.Buffers;

namespace ProfileArena.Server.Storage;

/// <summary>
/// Stacks and their values, packed into one byte buffer (each stack is <c>frame;frame;frame</c>, root
/// first, as <see cref="ProfileTree.Insert(ReadOnlySpan{byte}, ulong)"/> takes it). Three arrays whatever
/// the number of stacks: what an ingest request decodes into, what the WAL writes, what a shard inserts.
/// The arrays are rented from <see cref="IngestPools"/> (a megabyte profile would otherwise put
/// them on the Large Object Heap at every push): whoever creates a batch disposes it once nothing reads
/// it — the ingest request after <see cref="IProfileStorage.IngestAsync"/> completes (storage keeps no
/// reference past that: a shard that must hold a part longer takes a <see cref="Copy"/>).
/// </summary>
public sealed class StackBatch : IDisposable
{
    private byte[] _bytes = IngestPools.Bytes.Rent(256);
    private int[] _ends = IngestPools.Ints.Rent(16);
    private ulong[] _values = IngestPools.ULongs.Rent(16);
    private bool _disposed;

    /// <summary>Number of stacks.</summary>
    public int Count { get; private set; }

    /// <summary>Bytes of all stacks together.</summary>
    public int ByteCount => Count == 0 ? 0 : _ends[Count - 1];

    /// <summary>Sum of the values (saturating at <see cref="ulong.MaxValue"/>).</summary>
    public ulong Total { get; private set; }

    /// <summary>Appends one stack with its value.</summary>
    /// <exception cref="InvalidOperationException">The batch would pass 2 GiB of stack bytes.</exception>
    /// <exception cref="ObjectDisposedException">The batch was disposed.</exception>
    public void Add(ReadOnlySpan<byte> stack, ulong value)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int start = ByteCount;
        if (stack.Length > Array.MaxLength - start)
            throw new InvalidOperationException("a stack batch holds at most 2 GiB of stack bytes");
        if (start + stack.Length > _bytes.Length)
            IngestPools.Bytes.Grow(ref _bytes, start, (int)Math.Min(Array.MaxLength, Math.Max(start + (long)stack.Length, _bytes.Length * 2L)));
        if (Count == _ends.Length)
        {
            IngestPools.Ints.Grow(ref _ends, Count, Count * 2);
            IngestPools.ULongs.Grow(ref _values, Count, Count * 2);
        }
        stack.CopyTo(_bytes.AsSpan(start));
        _ends[Count] = start + stack.Length;
        _values[Count] = value;
        Total = value > ulong.MaxValue - Total ? ulong.MaxValue : Total + value;
        Count++;
    }

    /// <summary>Adds <paramref name="value"/> to the value of the stack at <paramref name="index"/> (a repeated stack
    /// summed in place). The caller keeps the values' sum within 2^64 − 1 (the ingest decoder refuses a sample type
    /// whose values add up past it), so no single value can overflow.</summary>
    internal void AddToValue(int index, ulong value)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)Count, nameof(index));
        _values[index] = checked(_values[index] + value);
        Total = value > ulong.MaxValue - Total ? ulong.MaxValue : Total + value;
    }

    /// <summary>A new batch (its own pooled arrays) with the same stacks and values; the caller disposes it.</summary>
    public StackBatch Copy()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var copy = new StackBatch();
        IngestPools.Bytes.Grow(ref copy._bytes, 0, ByteCount);
        IngestPools.Ints.Grow(ref copy._ends, 0, Count);
        IngestPools.ULongs.Grow(ref copy._values, 0, Count);
        _bytes.AsSpan(0, ByteCount).CopyTo(copy._bytes);
        _ends.AsSpan(0, Count).CopyTo(copy._ends);
        _values.AsSpan(0, Count).CopyTo(copy._values);
        copy.Count = Count;
        copy.Total = Total;
        return copy;
    }

    /// <summary>The stack at <paramref name="index"/>.</summary>
    public ReadOnlySpan<byte> Stack(int index)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)Count, nameof(index));
        int start = index == 0 ? 0 : _ends[index - 1];
        return _bytes.AsSpan(start, _ends[index] - start);
    }

    /// <summary>The value at <paramref name="index"/>.</summary>
    public ulong Value(int index)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)Count, nameof(index));
        return _values[index];
    }

    /// <summary>Gives the arrays back to the pool (idempotent). The batch is empty after, so a reader that
    /// wrongly comes later sees no stacks rather than another request's bytes; <see cref="Add"/> throws.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Count = 0;
        Total = 0;
        IngestPools.Bytes.Return(_bytes);
        IngestPools.Ints.Return(_ends);
        IngestPools.ULongs.Return(_values);
        _bytes = [];
        _ends = [];
        _values = [];
    }
}
