namespace ProfileArena.Workloads;

/// <summary>
/// SplitMix64 (Steele, Lea, Flood 2014; the reference <c>splitmix64.c</c> by Vigna): a documented,
/// portable 64-bit generator. Unlike <see cref="System.Random"/>, whose sequence is not a contract
/// across .NET versions, this sequence is fixed forever, so every run of every engine builds the
/// same trees.
/// </summary>
/// <remarks>
/// A mutable struct: pass it by <c>ref</c>. Copying it forks the stream (both copies return the
/// same numbers), which is never what the take-home workload wants: it uses one stream per run.
/// </remarks>
public struct SplitMix64
{
    /// <summary>The seed of the Go take-home program (<c>rand.Seed(23061912)</c>).</summary>
    public const ulong TakeHomeSeed = 23061912;

    private ulong _state;

    public SplitMix64(ulong seed) => _state = seed;

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>
    /// Uniform-enough value in [0, n) by Lemire's multiply-high: (next × n) >> 64. One draw per
    /// call (no rejection), so the stream position does not depend on the values drawn; the bias,
    /// at most n / 2^64, is irrelevant for n = 100.
    /// </summary>
    public ulong NextBelow(ulong n)
    {
        if (n == 0)
            throw new ArgumentOutOfRangeException(nameof(n), "n must be positive.");
        return (ulong)(((UInt128)NextUInt64() * n) >> 64);
    }

    /// <summary>Fills <paramref name="destination"/> with successive <see cref="NextUInt64"/> values, little-endian
    /// (40 bytes = 5 draws); a partial last word uses its low bytes and discards the rest.</summary>
    public void NextBytes(Span<byte> destination)
    {
        while (destination.Length >= 8)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(destination, NextUInt64());
            destination = destination[8..];
        }
        if (!destination.IsEmpty)
        {
            ulong last = NextUInt64();
            for (int i = 0; i < destination.Length; i++)
                destination[i] = (byte)(last >> (8 * i));
        }
    }
}
