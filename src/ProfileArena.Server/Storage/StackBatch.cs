namespace ProfileArena.Server.Storage;

/// <summary>
/// Stacks and their values, packed into one byte buffer (each stack is <c>frame;frame;frame</c>, root
/// first, as <see cref="ProfileTree.Insert(ReadOnlySpan{byte}, ulong)"/> takes it). Three arrays whatever
/// the number of stacks: what an ingest request decodes into, what the WAL writes, what a shard inserts.
/// </summary>
public sealed class StackBatch
{
    private byte[] _bytes = new byte[256];
    private int[] _ends = new int[16];
    private ulong[] _values = new ulong[16];

    /// <summary>Number of stacks.</summary>
    public int Count { get; private set; }

    /// <summary>Bytes of all stacks together.</summary>
    public int ByteCount => Count == 0 ? 0 : _ends[Count - 1];

    /// <summary>Sum of the values (saturating at <see cref="ulong.MaxValue"/>).</summary>
    public ulong Total { get; private set; }

    /// <summary>Appends one stack with its value.</summary>
    /// <exception cref="InvalidOperationException">The batch would pass 2 GiB of stack bytes.</exception>
    public void Add(ReadOnlySpan<byte> stack, ulong value)
    {
        int start = ByteCount;
        if (stack.Length > Array.MaxLength - start)
            throw new InvalidOperationException("a stack batch holds at most 2 GiB of stack bytes");
        if (start + stack.Length > _bytes.Length)
            Array.Resize(ref _bytes, (int)Math.Min(Array.MaxLength, Math.Max(start + (long)stack.Length, _bytes.Length * 2L)));
        if (Count == _ends.Length)
        {
            Array.Resize(ref _ends, Count * 2);
            Array.Resize(ref _values, Count * 2);
        }
        stack.CopyTo(_bytes.AsSpan(start));
        _ends[Count] = start + stack.Length;
        _values[Count] = value;
        Total = value > ulong.MaxValue - Total ? ulong.MaxValue : Total + value;
        Count++;
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
}
