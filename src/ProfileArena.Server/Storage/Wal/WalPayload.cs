using System.Buffers.Binary;
using System.Text;

namespace ProfileArena.Server.Storage.Wal;

/// <summary>
/// The payload of Ingest and Prepare records: <c>u64 transaction id (0 for Ingest) | u32 profile count |
/// profiles</c>, each profile <c>str tenant | str name | u32 labels | (str name, str value)* | i64 from | i64
/// until | str spy | u32 sample rate | str units | str aggregation | u32 stacks | (u32 length, bytes, u64
/// value)*</c>; <c>str</c> = u32 byte length + UTF-8. Commit records hold only the u64 transaction id.
/// </summary>
internal static class WalPayload
{
    public static byte[] Encode(IReadOnlyList<IngestProfile> profiles, long txn)
    {
        var output = new MemoryStream();
        var w = new BinaryWriter(output, Encoding.UTF8);
        w.Write(txn);
        w.Write(profiles.Count);
        foreach (IngestProfile p in profiles)
        {
            StorageBinary.WriteString(w, p.Series.Tenant);
            StorageBinary.WriteString(w, p.Series.Name);
            w.Write(p.Series.Labels.Length);
            foreach (Label l in p.Series.Labels)
            {
                StorageBinary.WriteString(w, l.Name);
                StorageBinary.WriteString(w, l.Value);
            }
            w.Write(p.FromSeconds);
            w.Write(p.UntilSeconds);
            StorageBinary.WriteString(w, p.Metadata.SpyName);
            w.Write(p.Metadata.SampleRate);
            StorageBinary.WriteString(w, p.Metadata.Units);
            StorageBinary.WriteString(w, p.Metadata.AggregationType);
            w.Write(p.Stacks.Count);
            for (int i = 0; i < p.Stacks.Count; i++)
            {
                ReadOnlySpan<byte> stack = p.Stacks.Stack(i);
                w.Write(stack.Length);
                w.Write(stack);
                w.Write(p.Stacks.Value(i));
            }
        }
        w.Flush();
        return output.ToArray();
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
