using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;

namespace ProfileArena.Server.Storage.Wal;

/// <summary>What a WAL record asks replay to do.</summary>
internal enum WalRecordKind : uint
{
    /// <summary>Profiles of one ingest call (its part in this shard): applied at once.</summary>
    Ingest = 1,
    /// <summary>This shard's part of an ingest call spanning shards: held until its <see cref="Commit"/>.</summary>
    Prepare = 2,
    /// <summary>Applies the prepared part with the same transaction id.</summary>
    Commit = 3,
}

/// <summary>One record read back from a WAL segment.</summary>
internal readonly record struct WalRecord(WalRecordKind Kind, long Seq, byte[] Payload, long Offset);

/// <summary>
/// Record framing (little-endian), see native-notes.md "Server storage":
/// <c>u32 magic "PAWR" | u32 kind | u64 seq | u32 payload length | u32 low half of XxHash64(bytes 0–19)
/// | payload | u64 XxHash64(header + payload)</c>. The header check lets a reader refuse a corrupt length
/// before trusting it; the trailing hash covers everything.
/// </summary>
internal static class WalFraming
{
    public const uint Magic = 0x52574150; // "PAWR"
    public const int HeaderSize = 24;
    public const int TrailerSize = 8;
    public const int MaxPayload = 1 << 30;

    /// <summary>Appends a whole record to <paramref name="output"/>.</summary>
    public static void Write(IBufferWriter<byte> output, WalRecordKind kind, long seq, ReadOnlySpan<byte> payload)
    {
        if (payload.Length > MaxPayload) throw new ArgumentException($"a WAL record holds at most {MaxPayload} bytes");
        int size = HeaderSize + payload.Length + TrailerSize;
        Span<byte> span = output.GetSpan(size)[..size];
        BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], (uint)kind);
        BinaryPrimitives.WriteInt64LittleEndian(span[8..], seq);
        BinaryPrimitives.WriteInt32LittleEndian(span[16..], payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(span[20..], (uint)XxHash64.HashToUInt64(span[..20]));
        payload.CopyTo(span[HeaderSize..]);
        BinaryPrimitives.WriteUInt64LittleEndian(span[(HeaderSize + payload.Length)..], XxHash64.HashToUInt64(span[..(HeaderSize + payload.Length)]));
        output.Advance(size);
    }

    /// <summary>Checks the header at the start of <paramref name="header"/>; returns the payload length or null
    /// with <paramref name="problem"/> set.</summary>
    public static int? CheckHeader(ReadOnlySpan<byte> header, out string problem)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != Magic)
        {
            problem = "no record magic";
            return null;
        }
        if (BinaryPrimitives.ReadUInt32LittleEndian(header[20..]) != (uint)XxHash64.HashToUInt64(header[..20]))
        {
            problem = "record header checksum mismatch";
            return null;
        }
        uint kind = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        int length = BinaryPrimitives.ReadInt32LittleEndian(header[16..]);
        if (kind is < 1 or > 3 || length < 0 || length > MaxPayload)
        {
            problem = $"impossible record header (kind {kind}, length {length})";
            return null;
        }
        problem = "";
        return length;
    }

    /// <summary>True when <paramref name="record"/> (header, payload, trailer) hashes right.</summary>
    public static bool CheckRecord(ReadOnlySpan<byte> record)
    {
        int body = record.Length - TrailerSize;
        return BinaryPrimitives.ReadUInt64LittleEndian(record[body..]) == XxHash64.HashToUInt64(record[..body]);
    }
}
