using System.Buffers;

namespace ProfileArena.Server.Buffers;

/// <summary>
/// A growable byte buffer whose array is rented from <see cref="IngestPools.Bytes"/> and given back by
/// <see cref="Dispose"/>: a request body, a decompressed profile or a WAL payload of a megabyte costs no
/// Large Object Heap allocation once the pool holds arrays of that size (the server-load run measured
/// gen2 collections for reason AllocLarge at 28% of its time before). Whoever creates one disposes it; the
/// written bytes must not be used after that.
/// </summary>
public sealed class PooledBuffer : IBufferWriter<byte>, IDisposable
{
    private byte[] _array;
    private int _written;

    /// <summary>An empty buffer with room for at least <paramref name="capacity"/> bytes.</summary>
    public PooledBuffer(int capacity = 4096) => _array = IngestPools.Bytes.Rent(Math.Max(capacity, 256));

    /// <summary>Bytes written so far.</summary>
    public int Length => _written;

    /// <summary>The bytes written so far (valid until the next write or <see cref="Dispose"/>).</summary>
    public ReadOnlyMemory<byte> WrittenMemory => _array.AsMemory(0, _written);

    /// <summary>The bytes written so far (valid until the next write or <see cref="Dispose"/>).</summary>
    public ReadOnlySpan<byte> WrittenSpan => _array.AsSpan(0, _written);

    /// <inheritdoc/>
    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _array.Length - _written);
        _written += count;
    }

    /// <inheritdoc/>
    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _array.AsMemory(_written);
    }

    /// <inheritdoc/>
    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _array.AsSpan(_written);
    }

    /// <summary>Appends <paramref name="bytes"/>.</summary>
    public void Write(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(GetSpan(bytes.Length));
        _written += bytes.Length;
    }

    private void Ensure(int sizeHint)
    {
        ObjectDisposedException.ThrowIf(_array.Length == 0, this);
        int needed = Math.Max(sizeHint, 1);
        if (needed <= _array.Length - _written) return;
        long size = Math.Max((long)_written + needed, _array.Length * 2L);
        if ((long)_written + needed > Array.MaxLength) throw new InvalidOperationException("a pooled buffer holds at most 2 GiB");
        byte[] bigger = IngestPools.Bytes.Rent((int)Math.Min(size, Array.MaxLength));
        _array.AsSpan(0, _written).CopyTo(bigger);
        IngestPools.Bytes.Return(_array);
        _array = bigger;
    }

    /// <summary>Gives the array back to the pool (idempotent); the buffer is empty and unusable after.</summary>
    public void Dispose()
    {
        byte[] array = _array;
        _array = [];
        _written = 0;
        if (array.Length > 0) IngestPools.Bytes.Return(array);
    }
}
