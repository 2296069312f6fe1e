using System.Buffers;
using System.Runtime.CompilerServices;

namespace ProfileArena.Formats;

/// <summary>
/// An <see cref="ArrayPool{T}"/> that keeps what it is given back — unlike <see cref="ArrayPool{T}.Shared"/>,
/// which drops its arrays at gen2 collections under memory load, so a megabyte array would be allocated on the
/// Large Object Heap again (and trigger the next gen2) — but within fixed bounds: at most
/// <see cref="MaxArraysPerSize"/> arrays per power-of-two length, and no array longer than
/// <see cref="MaxRetainedLength"/> (a larger request gets an exact, unpooled array that is dropped on return).
/// So it retains at most <c>MaxArraysPerSize × 2 × MaxRetainedLength</c> elements, and never more than
/// <see cref="MaxRetainedBytes"/> when that bound is given (an array that would pass it is dropped), and
/// <see cref="RetainedBytes"/> (also summed over every pool in <see cref="RetainingArrayPools.RetainedBytes"/>)
/// says how much it holds now. Thread-safe: one lock per length class.
/// </summary>
/// <typeparam name="T">Element type.</typeparam>
public sealed class RetainingArrayPool<T> : ArrayPool<T>
{
    private const int MinLength = 16;
    private readonly Stack<T[]>[] _classes;
    private readonly Lock[] _locks;
    private long _retainedBytes;

    /// <summary>A pool keeping at most <paramref name="maxArraysPerSize"/> arrays of each power-of-two length up to
    /// <paramref name="maxRetainedLength"/> (rounded down to a power of two, at least 16).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A bound is below 1 (arrays) or 16 (length).</exception>
    public RetainingArrayPool(int maxArraysPerSize, int maxRetainedLength)
        : this(maxArraysPerSize, maxRetainedLength, long.MaxValue)
    {
    }

    /// <summary>As <see cref="RetainingArrayPool{T}(int, int)"/>, holding at most <paramref name="maxRetainedBytes"/>
    /// bytes in all: many arrays per length class for bursts of one size, without their product as the bound.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A bound is below 1 (arrays, bytes) or 16 (length).</exception>
    public RetainingArrayPool(int maxArraysPerSize, int maxRetainedLength, long maxRetainedBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxArraysPerSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRetainedLength, MinLength);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRetainedBytes, 1);
        MaxRetainedBytes = maxRetainedBytes;
        MaxArraysPerSize = maxArraysPerSize;
        MaxRetainedLength = 1 << (31 - System.Numerics.BitOperations.LeadingZeroCount((uint)maxRetainedLength));
        int classes = ClassOf(MaxRetainedLength) + 1;
        _classes = new Stack<T[]>[classes];
        _locks = new Lock[classes];
        for (int i = 0; i < classes; i++)
        {
            _classes[i] = new Stack<T[]>();
            _locks[i] = new Lock();
        }
    }

    /// <summary>Most bytes kept in all (<see cref="long.MaxValue"/>: only the per-class bounds apply).</summary>
    public long MaxRetainedBytes { get; }

    /// <summary>Most arrays kept per length class.</summary>
    public int MaxArraysPerSize { get; }

    /// <summary>Longest array kept (a power of two); longer requests are allocated and dropped.</summary>
    public int MaxRetainedLength { get; }

    /// <summary>Bytes of the arrays the pool holds now (not those rented out).</summary>
    public long RetainedBytes => Interlocked.Read(ref _retainedBytes);

    /// <summary>An array of at least <paramref name="minimumLength"/> elements: a kept one when there is one of its
    /// length class, else a new one of the class's length (or of exactly the length asked, above the largest class).</summary>
    public override T[] Rent(int minimumLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(minimumLength);
        if (minimumLength == 0) return [];
        if (minimumLength > MaxRetainedLength) return GC.AllocateUninitializedArray<T>(minimumLength);
        int c = ClassOf(minimumLength);
        lock (_locks[c])
        {
            if (_classes[c].TryPop(out T[]? kept))
            {
                Count(-kept.Length);
                return kept;
            }
        }
        return GC.AllocateUninitializedArray<T>(LengthOf(c));
    }

    /// <summary>Replaces <paramref name="array"/> (rented here) by a rented one of at least <paramref name="minimumLength"/>
    /// elements holding its first <paramref name="used"/>, and returns the old one; nothing when it is long enough.</summary>
    public void Grow(ref T[] array, int used, int minimumLength)
    {
        if (minimumLength <= array.Length) return;
        T[] bigger = Rent(minimumLength);
        array.AsSpan(0, used).CopyTo(bigger);
        Return(array);
        array = bigger;
    }

    /// <summary>Keeps <paramref name="array"/> when its length is one of the classes and its class has room; drops it otherwise.</summary>
    public override void Return(T[] array, bool clearArray = false)
    {
        ArgumentNullException.ThrowIfNull(array);
        int length = array.Length;
        if (length < MinLength || length > MaxRetainedLength || (length & (length - 1)) != 0) return; // not one of ours
        if (clearArray || RuntimeHelpers.IsReferenceOrContainsReferences<T>()) Array.Clear(array); // a kept array must not keep objects alive
        int c = ClassOf(length);
        lock (_locks[c])
        {
            if (_classes[c].Count >= MaxArraysPerSize) return;
            // The byte bound spans classes (one lock each): claim the bytes first, give them back if they do not fit.
            long bytes = (long)length * ElementBytes;
            if (Interlocked.Add(ref _retainedBytes, bytes) > MaxRetainedBytes)
            {
                Interlocked.Add(ref _retainedBytes, -bytes);
                return;
            }
            RetainingArrayPools.Add(bytes);
            _classes[c].Push(array);
        }
    }

    private void Count(long elements)
    {
        long bytes = elements * ElementBytes;
        Interlocked.Add(ref _retainedBytes, bytes);
        RetainingArrayPools.Add(bytes);
    }

    private static readonly int ElementBytes = Unsafe.SizeOf<T>(); // a reference: the pointer size

    /// <summary>Class c holds arrays of 16 · 2^c elements.</summary>
    private static int ClassOf(int length) => Math.Max(0, 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)(length - 1)) - 4);

    private static int LengthOf(int c) => MinLength << c;
}

/// <summary>What every <see cref="RetainingArrayPool{T}"/> of the process holds (the server reports it in /metrics).</summary>
public static class RetainingArrayPools
{
    private static long s_retainedBytes;

    /// <summary>Bytes of the arrays kept by all retaining pools now.</summary>
    public static long RetainedBytes => Interlocked.Read(ref s_retainedBytes);

    internal static void Add(long bytes) => Interlocked.Add(ref s_retainedBytes, bytes);
}
