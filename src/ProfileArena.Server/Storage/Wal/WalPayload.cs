using System.Buffers.Binary;
using System.Text;
using ProfileArena.Server.Buffers;

namespace ProfileArena.Server.Storage.Wal;

/// <summary>
/// The payload of Ingest and Prepare records: <c>u64 transaction id (0 for Ingest) | u32 profile count |
/// profiles</c>, each profile <c>str tenant | str name | u32 labels | (str name, str value)* | i64 from | i64
/// until | str spy | u32 sample rate | str units | str aggregation | u32 stacks | (u32 length, bytes, u64
/// value)*</c>; <c>str</c> = u32 byte length + UTF-8. Commit records hold only the u64 transaction id.
/// </summary>
internal static class WalPayload
{
    /// <summary>Encodes the payload into a pooled buffer the caller disposes (a megabyte profile's payload
    /// would otherwise be a fresh Large Object Heap array per push).</summary>
    public static PooledBuffer Encode(IReadOnlyList<IngestProfile> profiles, long txn)
    {
        long size = 12;
        foreach (IngestProfile p in profiles) size += 256 + p.Stacks.ByteCount + 12L * p.Stacks.Count;
        var output = new PooledBuffer((int)Math.Min(size, 1 << 30));
        try
        {
            I64(output, txn);
            I32(output, profiles.Count);
            foreach (IngestProfile p in profiles)
            {
                Str(output, p.Series.Tenant);
                Str(output, p.Series.Name);
                I32(output, p.Series.Labels.Length);
                foreach (Label l in p.Series.Labels)
                {
                    Str(output, l.Name);
                    Str(output, l.Value);
                }
                I64(output, p.FromSeconds);
                I64(output, p.UntilSeconds);
                Str(output, p.Metadata.SpyName);
                BinaryPrimitives.WriteUInt32LittleEndian(output.GetSpan(4), p.Metadata.SampleRate);
                output.Advance(4);
                Str(output, p.Metadata.Units);
                Str(output, p.Metadata.AggregationType);
                I32(output, p.Stacks.Count);
                for (int i = 0; i < p.Stacks.Count; i++)
                {
                    ReadOnlySpan<byte> stack = p.Stacks.Stack(i);
                    I32(output, stack.Length);
                    output.Write(stack);
                    BinaryPrimitives.WriteUInt64LittleEndian(output.GetSpan(8), p.Stacks.Value(i));
                    output.Advance(8);
                }
            }
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    private static void I32(PooledBuffer output, int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(output.GetSpan(4), value);
        output.Advance(4);
    }

    private static void I64(PooledBuffer output, long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(output.GetSpan(8), value);
        output.Advance(8);
    }

    private static void Str(PooledBuffer output, string s)
    {
        int length = Encoding.UTF8.GetByteCount(s);
        I32(output, length);
        Encoding.UTF8.GetBytes(s, output.GetSpan(length));
        output.Advance(length);
    }

    public static byte[] EncodeCommit(long txn)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, txn);
        return bytes;
    }

    public static long DecodeTxn(byte[] payload)
    {
        if (payload.Length < 8) throw new InvalidDataException("payload shorter than its transaction id");
        return BinaryPrimitives.ReadInt64LittleEndian(payload);
    }

    /// <summary>Decodes what <see cref="Encode"/> wrote. The record's checksum was verified first, so a failure
    /// here means a writer bug or a crafted file: <see cref="InvalidDataException"/> naming the payload offset.</summary>
    public static (long Txn, List<IngestProfile> Profiles) Decode(byte[] payload)
    {
        var r = new BinaryReader(new MemoryStream(payload, writable: false), Encoding.UTF8);
        try
        {
            long txn = r.ReadInt64();
            int count = StorageBinary.ReadCount(r, payload.Length / 32);
            var profiles = new List<IngestProfile>(count);
            for (int i = 0; i < count; i++)
            {
                string tenant = StorageBinary.ReadString(r), name = StorageBinary.ReadString(r);
                int labelCount = StorageBinary.ReadCount(r, payload.Length / 8);
                var labels = new Label[labelCount];
                for (int j = 0; j < labelCount; j++) labels[j] = new Label(StorageBinary.ReadString(r), StorageBinary.ReadString(r));
                long from = r.ReadInt64(), until = r.ReadInt64();
                var metadata = new SeriesMetadata(StorageBinary.ReadString(r), r.ReadUInt32(), StorageBinary.ReadString(r), StorageBinary.ReadString(r));
                int stacks = StorageBinary.ReadCount(r, payload.Length / 12);
                var batch = new StackBatch();
                for (int j = 0; j < stacks; j++)
                {
                    int length = StorageBinary.ReadCount(r, payload.Length);
                    byte[] stack = r.ReadBytes(length);
                    if (stack.Length != length) throw new EndOfStreamException();
                    batch.Add(stack, r.ReadUInt64());
                }
                profiles.Add(new IngestProfile(new SeriesKey(tenant, name, labels), from, until, metadata, batch));
            }
            if (r.BaseStream.Position != payload.Length) throw new InvalidDataException($"{payload.Length - r.BaseStream.Position} bytes after the last profile");
            return (txn, profiles);
        }
        catch (Exception e) when (e is EndOfStreamException or ArgumentException or DecoderFallbackException)
        {
            throw new InvalidDataException($"malformed payload at payload byte {r.BaseStream.Position}: {e.Message}", e);
        }
    }
}
