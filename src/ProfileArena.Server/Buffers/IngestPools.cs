using ProfileArena.Formats;

namespace ProfileArena.Server.Buffers;

/// <summary>
/// The pools the ingest path rents its large arrays from (<see cref="RetainingArrayPool{T}"/>: not
/// <see cref="System.Buffers.ArrayPool{T}.Shared"/>, which drops its arrays at gen2 collections when the machine's
/// memory load is medium or high, as on a machine shared by many processes, and a dropped megabyte array is
/// allocated again on the Large Object Heap — which triggers the next gen2). Bounded: at most
/// <see cref="ArraysPerSize"/> arrays per power-of-two length and none longer than <see cref="MaxRetainedBytes"/>
/// bytes (a request that needs more gets an unpooled array), so the three pools hold at most
/// 2 × ArraysPerSize × MaxRetainedBytes bytes each; /metrics reports what they hold (profilearena_pool_retained_bytes).
/// This memory is not in Storage:MaxNativeBytes (that budget is the stores'); README, "The server under load".
/// </summary>
public static class IngestPools
{
    /// <summary>Arrays kept per length: more than the large arrays in flight at once on a small server (4–8 requests).</summary>
    public const int ArraysPerSize = 8;

    /// <summary>Longest array kept, in bytes (16 MiB: a 2.5 MB profile's buffers are 4 MiB).</summary>
    public const int MaxRetainedBytes = 16 << 20;

    /// <summary>Bytes: request bodies, inflated profiles, stack bytes, WAL payloads.</summary>
    public static readonly RetainingArrayPool<byte> Bytes = new(ArraysPerSize, MaxRetainedBytes);

    /// <summary>Stack ends of <see cref="Storage.StackBatch"/>.</summary>
    public static readonly RetainingArrayPool<int> Ints = new(ArraysPerSize, MaxRetainedBytes / sizeof(int));

    /// <summary>Stack values of <see cref="Storage.StackBatch"/>.</summary>
    public static readonly RetainingArrayPool<ulong> ULongs = new(ArraysPerSize, MaxRetainedBytes / sizeof(ulong));
}
