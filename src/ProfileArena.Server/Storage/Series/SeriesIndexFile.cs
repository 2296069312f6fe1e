using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace ProfileArena.Server.Storage.Series;

/// <summary>
/// A shard's series index at a snapshot, written beside the trees file (<c>snap-&lt;seq&gt;.index</c>, atomically:
/// stored atomically by the shard's medium after the trees). Little-endian: <c>u64 magic "PAINDEX1" | u64 seq covered |
/// i64 trees file length | u32 levels | str tenant | u32 series | per series: str name | u32 labels | (str, str)* |
/// str spy | u32 rate | str units | str aggregation | per level: u32 buckets | (i64 start, i32 tree id)* | u64
/// XxHash64 of everything before</c>; <c>str</c> = u32 byte length + UTF-8.
/// </summary>
internal static class SeriesIndexFile
{
    private const ulong Magic = 0x3158454E49414150; // "PAINDEX1"

    /// <summary>The index file's bytes (the shard's medium stores them atomically, after the trees file).</summary>
    public static byte[] Encode(long seq, long treesLength, int levels, string tenant, IEnumerable<SeriesState> series)
    {
        var output = new MemoryStream();
        var w = new BinaryWriter(output, Encoding.UTF8);
        w.Write(Magic);
        w.Write(seq);
        w.Write(treesLength);
        w.Write(levels);
        StorageBinary.WriteString(w, tenant);
        List<SeriesState> all = [.. series];
        w.Write(all.Count);
        foreach (SeriesState s in all)
        {
            StorageBinary.WriteString(w, s.Key.Name);
            w.Write(s.Key.Labels.Length);
            foreach (Label l in s.Key.Labels)
            {
                StorageBinary.WriteString(w, l.Name);
                StorageBinary.WriteString(w, l.Value);
            }
            StorageBinary.WriteString(w, s.Metadata.SpyName);
            w.Write(s.Metadata.SampleRate);
            StorageBinary.WriteString(w, s.Metadata.Units);
            StorageBinary.WriteString(w, s.Metadata.AggregationType);
            foreach (Dictionary<long, int> level in s.Buckets)
            {
                w.Write(level.Count);
                foreach (var (start, tree) in level.OrderBy(kv => kv.Key))
                {
                    w.Write(start);
                    w.Write(tree);
                }
            }
        }
        w.Flush();
        w.Write(XxHash64.HashToUInt64(output.GetBuffer().AsSpan(0, (int)output.Length)));
        w.Flush();
        return output.ToArray();
    }

    /// <summary>Reads an index made by <see cref="Encode"/> from <paramref name="bytes"/> of the file (or blob) <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">Corrupt or truncated: names the file and byte offset.</exception>
    public static (long Seq, long TreesLength, string Tenant, List<SeriesState> Series) Read(byte[] bytes, string path, int levels)
    {
        if (bytes.Length < 8 + 8 + 8 + 4 + 4 + 4 + 8)
            throw new InvalidDataException($"series index {path} is corrupt at byte offset 0: {bytes.Length} bytes is too short");
        ulong expected = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(bytes.Length - 8));
        if (XxHash64.HashToUInt64(bytes.AsSpan(0, bytes.Length - 8)) != expected)
            throw new InvalidDataException($"series index {path} is corrupt at byte offset {bytes.Length - 8}: checksum mismatch");
        var r = new BinaryReader(new MemoryStream(bytes, 0, bytes.Length - 8, writable: false), Encoding.UTF8);
        try
        {
            if (r.ReadUInt64() != Magic) throw new InvalidDataException("not a series index (magic)");
            long seq = r.ReadInt64();
            long treesLength = r.ReadInt64();
            int savedLevels = r.ReadInt32();
            if (savedLevels != levels)
                throw new InvalidDataException($"written with {savedLevels} levels, Storage:Levels is {levels} (changing the level count needs an empty data directory)");
            string tenant = StorageBinary.ReadString(r);
            int count = StorageBinary.ReadCount(r, bytes.Length);
            var series = new List<SeriesState>(count);
            for (int i = 0; i < count; i++)
            {
                string name = StorageBinary.ReadString(r);
                var labels = new Label[StorageBinary.ReadCount(r, bytes.Length)];
                for (int j = 0; j < labels.Length; j++) labels[j] = new Label(StorageBinary.ReadString(r), StorageBinary.ReadString(r));
                var metadata = new SeriesMetadata(StorageBinary.ReadString(r), r.ReadUInt32(), StorageBinary.ReadString(r), StorageBinary.ReadString(r));
                var state = new SeriesState(new SeriesKey(tenant, name, labels), metadata, levels);
                for (int level = 0; level < levels; level++)
                {
                    int buckets = StorageBinary.ReadCount(r, bytes.Length);
                    for (int b = 0; b < buckets; b++)
                    {
                        long start = r.ReadInt64();
                        int tree = r.ReadInt32();
                        if (start != BucketMath.Floor(start, level) || !state.Buckets[level].TryAdd(start, tree))
                            throw new InvalidDataException($"bucket {start} of level {level} is misaligned or repeated");
                    }
                }
                series.Add(state);
            }
            if (r.BaseStream.Position != bytes.Length - 8) throw new InvalidDataException("bytes after the last series");
            return (seq, treesLength, tenant, series);
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or ArgumentException or DecoderFallbackException)
        {
            throw new InvalidDataException($"series index {path} is corrupt at byte offset {r.BaseStream.Position}: {e.Message}", e);
        }
    }
}
