using ProfileArena.Engine;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ProfileArena.Workloads;

namespace ProfileArena.Benchmarks.Support;

// The engines' sinks (ArenaSink, BaselineSink) are ProfileArena.Workloads' own; these are the benchmarks' measuring sinks.

/// <summary>
/// The memory floor of an insert that reads each key once: exactly what the arena's path cache does
/// with the bytes — the same vectorised common-prefix function (<see cref="KeyPrefix"/>, 64 bytes a
/// step) against the previous key, then copy the new tail into the previous-key buffer — and nothing
/// else (no split, no lookup, no node).
/// </summary>
public struct FloorSink(byte[] previous) : IKeySink
{
    private int _length;
    public ulong Checksum;

    public void Insert(ReadOnlySpan<byte> key, ulong value)
    {
        int common = KeyPrefix.CommonLength(key, previous.AsSpan(0, _length));
        key[common..].CopyTo(previous.AsSpan(common));
        _length = key.Length;
        Checksum += (ulong)common + value;
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
