using ProfileArena.Formats;

namespace ProfileArena.Server.Buffers;

/// <summary>
/// The pools the ingest path rents its large arrays from (<see cref="RetainingArrayPool{T}"/>: not
/// <see cref="System.Buffers.ArrayPool{T}.Shared"/>, which drops its arrays at gen2 collections when the machine's
/// memory load is medium or high, as on a machine shared by many processes, and a dropped megabyte array is
/// allocated again on the Large Object Heap — which triggers the next gen2). Bounded: at most
/// <see cref="ArraysPerSize"/> arrays per power-of-two length and none longer than <see cref="MaxRetainedBytes"/>
/// bytes (a request that needs more gets an unpooled array), and at most <see cref="PoolBytes"/> each; /metrics reports what they hold (profilearena_pool_retained_bytes).
/// This memory is not in Storage:MaxNativeBytes (that budget is the stores'); README, "The server under load".
/// </summary>
public static class IngestPools
{
    /// <summary>Arrays kept per length: more than the large arrays of one size alive at once — the requests in flight
    /// and, since a write is acknowledged before it is applied, the shards' copies waiting for their apply (up to
    /// Storage:MaxUnappliedBytes each). With 8, a 30 M-node load run still put 70 MiB of byte arrays on the Large
    /// Object Heap (allocation ticks), each pushing the next background gen2 closer; <see cref="PoolBytes"/> bounds the total.</summary>
    public const int ArraysPerSize = 32;

    /// <summary>Most bytes each pool keeps in all (the per-length bound alone would allow 2 × 32 × 16 MiB).</summary>
    public const long PoolBytes = 256L << 20;

    /// <summary>Longest array kept, in bytes (16 MiB: a 2.5 MB profile's buffers are 4 MiB).</summary>
    public const int MaxRetainedBytes = 16 << 20;

    /// <summary>Bytes: request bodies, inflated profiles, stack bytes, WAL payloads.</summary>
    public static readonly RetainingArrayPool<byte> Bytes = new(ArraysPerSize, MaxRetainedBytes, PoolBytes);

    /// <summary>Stack ends of <see cref="Storage.StackBatch"/>.</summary>
    public static readonly RetainingArrayPool<int> Ints = new(ArraysPerSize, MaxRetainedBytes / sizeof(int), PoolBytes);

    /// <summary>Stack values of <see cref="Storage.StackBatch"/>.</summary>
    public static readonly RetainingArrayPool<ulong> ULongs = new(ArraysPerSize, MaxRetainedBytes / sizeof(ulong), PoolBytes);
}
