using System.Buffers;

namespace ProfileArena.Server.Buffers;

/// <summary>
/// The pools the ingest path rents its large arrays from. Not <see cref="ArrayPool{T}.Shared"/>: the shared pool
/// drops its arrays at gen2 collections when the machine's memory load is medium or high (as on a machine shared
/// by many processes), and a dropped megabyte array is allocated again on the Large Object Heap — which triggers
/// the next gen2. These pools never trim: they keep at most <see cref="ArraysPerSize"/> arrays per power-of-two
/// size, so what they hold is bounded by the largest requests times their concurrency.
/// </summary>
public static class IngestPools
{
    /// <summary>Arrays kept per size: more than the requests in flight at once on a small server.</summary>
    public const int ArraysPerSize = 16;

    /// <summary>Bytes: request bodies, inflated profiles, stack bytes, WAL payloads.</summary>
    public static readonly ArrayPool<byte> Bytes = ArrayPool<byte>.Create(1 << 30, ArraysPerSize);

    /// <summary>Stack ends of <see cref="Storage.StackBatch"/>.</summary>
    public static readonly ArrayPool<int> Ints = ArrayPool<int>.Create(1 << 28, ArraysPerSize);

    /// <summary>Stack values of <see cref="Storage.StackBatch"/>.</summary>
    public static readonly ArrayPool<ulong> ULongs = ArrayPool<ulong>.Create(1 << 27, ArraysPerSize);
}
