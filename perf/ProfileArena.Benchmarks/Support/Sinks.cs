using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ProfileArena.Baseline;
using ProfileArena.Workloads;

namespace ProfileArena.Benchmarks.Support;

/// <summary>Take-home inserts into an arena tree.</summary>
public struct ArenaSink(ProfileTree tree) : IKeySink
{
    public void Insert(ReadOnlySpan<byte> key, ulong value) => tree.Insert(key, value);
}

/// <summary>Take-home inserts into the object-per-node Baseline.</summary>
public struct BaselineSink(BaselineTree tree) : IKeySink
{
    public void Insert(ReadOnlySpan<byte> key, ulong value) => tree.Insert(key, value);
}

/// <summary>
/// The memory floor of an insert that reads each key once: exactly what the arena's path cache does
/// with the bytes — vectorised common-prefix length against the previous key, then copy the new tail
/// into the previous-key buffer — and nothing else (no split, no lookup, no node).
/// </summary>
public struct FloorSink(byte[] previous) : IKeySink
{
    private int _length;
    public ulong Checksum;

    public void Insert(ReadOnlySpan<byte> key, ulong value)
    {
        int common = key.CommonPrefixLength(previous.AsSpan(0, _length));
        key[common..].CopyTo(previous.AsSpan(common));
        _length = key.Length;
        Checksum += (ulong)common + value;
    }
}

/// <summary>
/// The floor with a wider compare than the BCL's CommonPrefixLength (which is a 16-byte Vector128 loop
/// in .NET 10): two 32-byte vectors per iteration. Not a benchmark of the suite; <c>--loop floor256</c>
/// measures what a wider compare in the path cache would save.
/// </summary>
public struct WideFloorSink(byte[] previous) : IKeySink
{
    private int _length;
    public ulong Checksum;

    public void Insert(ReadOnlySpan<byte> key, ulong value)
    {
        int common = WideCompare.CommonPrefixLength(key, previous.AsSpan(0, _length));
        key[common..].CopyTo(previous.AsSpan(common));
        _length = key.Length;
        Checksum += (ulong)common + value;
    }
}

public static class WideCompare
{
    public static int CommonPrefixLength(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        nuint length = (nuint)Math.Min(a.Length, b.Length), i = 0;
        ref byte x = ref MemoryMarshal.GetReference(a);
        ref byte y = ref MemoryMarshal.GetReference(b);
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 64 <= length; i += 64)
            {
                Vector256<byte> e0 = Vector256.Equals(Vector256.LoadUnsafe(ref x, i), Vector256.LoadUnsafe(ref y, i));
                Vector256<byte> e1 = Vector256.Equals(Vector256.LoadUnsafe(ref x, i + 32), Vector256.LoadUnsafe(ref y, i + 32));
                if ((e0 & e1) != Vector256<byte>.AllBitsSet)
                {
                    uint m0 = ~e0.ExtractMostSignificantBits();
                    return m0 != 0 ? (int)(i + (nuint)uint.TrailingZeroCount(m0)) : (int)(i + 32 + (nuint)uint.TrailingZeroCount(~e1.ExtractMostSignificantBits()));
                }
            }
        }
        return (int)i + a[(int)i..].CommonPrefixLength(b[(int)i..]);
    }
}

/// <summary>Only the generator: what every take-home benchmark pays before its sink sees a key.</summary>
public struct NullSink : IKeySink
{
    public ulong Checksum;

    public void Insert(ReadOnlySpan<byte> key, ulong value) => Checksum += (ulong)key.Length + value;
}

/// <summary>Folds every byte of a span (XOR of 32-byte vectors, then the tail): memory-bound, a few cycles per 32 bytes.</summary>
public static class ByteToucher
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Fold(ReadOnlySpan<byte> span)
    {
        ref byte start = ref MemoryMarshal.GetReference(span);
        nuint length = (nuint)span.Length, i = 0;
        ulong acc = 0;
        if (Vector256.IsHardwareAccelerated && length >= 32)
        {
            Vector256<byte> v = Vector256<byte>.Zero;
            for (; i + 32 <= length; i += 32)
                v ^= Vector256.LoadUnsafe(ref start, i);
            Vector256<ulong> w = v.AsUInt64();
            acc = w[0] ^ w[1] ^ w[2] ^ w[3];
        }
        for (; i < length; i++)
            acc = (acc << 1 | acc >> 63) ^ Unsafe.Add(ref start, i);
        return acc;
    }
}

/// <summary>Arena visitor that reads every byte of every stack.</summary>
public struct TouchBytesVisitor : IStackVisitor
{
    public ulong Acc;
    public long Nodes;

    public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
    {
        Acc += ByteToucher.Fold(stack) + self + total;
        Nodes++;
    }
}

/// <summary>Arena visitor that reads the length and last byte of the stack only: the cost of the walk itself.</summary>
public struct LightVisitor : IStackVisitor
{
    public ulong Acc;
    public long Nodes;

    public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
    {
        Acc += (ulong)stack.Length + (stack.IsEmpty ? 0u : stack[^1]) + self + total;
        Nodes++;
    }
}

/// <summary>The same two visitors for the Baseline, whose Iterate takes a delegate (its only API).</summary>
public sealed class BaselineVisitors
{
    public ulong Acc;
    public long Nodes;

    public void TouchBytes(ReadOnlySpan<byte> stack, ulong self, ulong total)
    {
        Acc += ByteToucher.Fold(stack) + self + total;
        Nodes++;
    }

    public void Light(ReadOnlySpan<byte> stack, ulong self, ulong total)
    {
        Acc += (ulong)stack.Length + (stack.IsEmpty ? 0u : stack[^1]) + self + total;
        Nodes++;
    }
}
