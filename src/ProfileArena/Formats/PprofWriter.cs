using System.IO.Compression;
using Google.Protobuf;

namespace ProfileArena.Formats;

/// <summary>
/// Writes a tree as a gzip-compressed profile.proto by hand with <see cref="CodedOutputStream"/> (field numbers
/// as in <see cref="PprofFormat"/>'s remarks). Samples are streamed while the tree is iterated; locations,
/// functions and the string table follow, so memory is the distinct names, not the output.
/// </summary>
internal static class PprofWriter
{
    private const int SampleTypeField = 1, SampleField = 2, LocationField = 4, FunctionField = 5, StringField = 6,
        TimeNanosField = 9, DurationNanosField = 10, PeriodTypeField = 11, PeriodField = 12;

    public static long Write(ProfileTree tree, Stream output, PprofExportOptions options)
    {
        using var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true);
        var proto = new CodedOutputStream(gzip, leaveOpen: true);
        var strings = new StringTable();
        WriteValueType(proto, SampleTypeField, strings.Index(options.SampleType), strings.Index(options.SampleUnit));

        var samples = new SampleWriter(proto, strings);
        tree.Iterate(ref samples);

        // One Location and one Function per distinct frame name, both with the id samples.Locations gave it.
        for (int i = 0; i < samples.Functions.Count; i++)
        {
            ulong id = (ulong)i + 1;
            int line = 1 + CodedOutputStream.ComputeUInt64Size(id);
            proto.WriteTag(LocationField, WireFormat.WireType.LengthDelimited);
            proto.WriteLength(1 + CodedOutputStream.ComputeUInt64Size(id) + 1 + CodedOutputStream.ComputeLengthSize(line) + line);
            proto.WriteTag(1, WireFormat.WireType.Varint);
            proto.WriteUInt64(id);
            proto.WriteTag(4, WireFormat.WireType.LengthDelimited);
            proto.WriteLength(line);
            proto.WriteTag(1, WireFormat.WireType.Varint);
            proto.WriteUInt64(id);
        }
        for (int i = 0; i < samples.Functions.Count; i++)
        {
            ulong id = (ulong)i + 1;
            long name = samples.Functions[i];
            int nameSize = CodedOutputStream.ComputeInt64Size(name);
            proto.WriteTag(FunctionField, WireFormat.WireType.LengthDelimited);
            proto.WriteLength(1 + CodedOutputStream.ComputeUInt64Size(id) + 2 * (1 + nameSize));
            proto.WriteTag(1, WireFormat.WireType.Varint);
            proto.WriteUInt64(id);
            proto.WriteTag(2, WireFormat.WireType.Varint); // name
            proto.WriteInt64(name);
            proto.WriteTag(3, WireFormat.WireType.Varint); // system_name, the same
            proto.WriteInt64(name);
        }
        if (options.PeriodType is { } period)
            WriteValueType(proto, PeriodTypeField, strings.Index(period.Type), strings.Index(period.Unit));
        foreach (byte[] s in strings.All)
        {
            proto.WriteTag(StringField, WireFormat.WireType.LengthDelimited);
            proto.WriteBytes(UnsafeByteOperations.UnsafeWrap(s));
        }
        WriteNonZero(proto, TimeNanosField, options.TimeNanos);
        WriteNonZero(proto, DurationNanosField, options.DurationNanos);
        WriteNonZero(proto, PeriodField, options.Period);
        proto.Flush();
        return samples.Count;
    }

    private static void WriteValueType(CodedOutputStream proto, int field, long type, long unit)
    {
        proto.WriteTag(field, WireFormat.WireType.LengthDelimited);
        proto.WriteLength(2 + CodedOutputStream.ComputeInt64Size(type) + CodedOutputStream.ComputeInt64Size(unit));
        proto.WriteTag(1, WireFormat.WireType.Varint);
        proto.WriteInt64(type);
        proto.WriteTag(2, WireFormat.WireType.Varint);
        proto.WriteInt64(unit);
    }

    private static void WriteNonZero(CodedOutputStream proto, int field, long value)
    {
        if (value == 0) return;
        proto.WriteTag(field, WireFormat.WireType.Varint);
        proto.WriteInt64(value);
    }

    /// <summary>The string table: index 0 is "", every distinct byte string once.</summary>
    private sealed class StringTable
    {
        private readonly Dictionary<byte[], int> _index = new(ByteStringComparer.Instance) { [[]] = 0 };
        private readonly Dictionary<byte[], int>.AlternateLookup<ReadOnlySpan<byte>> _lookup;

        public StringTable() => _lookup = _index.GetAlternateLookup<ReadOnlySpan<byte>>();

        public List<byte[]> All { get; } = [[]];

        public int Index(string text) => Index(System.Text.Encoding.UTF8.GetBytes(text));

        /// <summary>The index of <paramref name="bytes"/>, added when new; <paramref name="added"/> tells which.</summary>
        public int Index(ReadOnlySpan<byte> bytes, out bool added)
        {
            added = false;
            if (_lookup.TryGetValue(bytes, out int index)) return index;
            byte[] copy = bytes.ToArray();
            index = All.Count;
            All.Add(copy);
            _index.Add(copy, index);
            added = true;
            return index;
        }

        private int Index(byte[] bytes) => Index(bytes, out _);
    }

    private sealed class ByteStringComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly ByteStringComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] bytes) => GetHashCode((ReadOnlySpan<byte>)bytes);

        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

        public int GetHashCode(ReadOnlySpan<byte> alternate)
        {
            var hash = new HashCode();
            hash.AddBytes(alternate);
            return hash.ToHashCode();
        }

        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
    }

    /// <summary>Writes one sample per node with self &gt; 0, tracking the location ids of the current path.</summary>
    private struct SampleWriter(CodedOutputStream proto, StringTable strings) : IStackVisitor
    {
        private readonly StackDepthTracker _depth = new();
        private readonly List<ulong> _path = [];
        private readonly Dictionary<int, ulong> _functionOfString = [];

        /// <summary>The name's string index of function (and location) id i + 1.</summary>
        public List<long> Functions { get; } = [];

        public long Count { get; private set; }

        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
        {
            int depth = _depth.Next(stack);
            int name = strings.Index(stack[_depth.NameStart..], out _);
            if (!_functionOfString.TryGetValue(name, out ulong id))
            {
                Functions.Add(name);
                id = (ulong)Functions.Count;
                _functionOfString.Add(name, id);
            }
            _path.RemoveRange(depth - 1, _path.Count - (depth - 1));
            _path.Add(id);
            // pprof values are int64: a larger self is split over samples of the same stack (Import adds them up).
            while (self > 0)
            {
                ulong part = Math.Min(self, long.MaxValue);
                WriteSample((long)part);
                self -= part;
            }
        }

        private void WriteSample(long value)
        {
            int packed = 0;
            foreach (ulong id in _path) packed += CodedOutputStream.ComputeUInt64Size(id);
            int size = 1 + CodedOutputStream.ComputeLengthSize(packed) + packed + 1 + CodedOutputStream.ComputeInt64Size(value);
            proto.WriteTag(SampleField, WireFormat.WireType.LengthDelimited);
            proto.WriteLength(size);
            proto.WriteTag(1, WireFormat.WireType.LengthDelimited);
            proto.WriteLength(packed);
            for (int i = _path.Count - 1; i >= 0; i--) proto.WriteUInt64(_path[i]); // leaf first
            proto.WriteTag(2, WireFormat.WireType.Varint);
            proto.WriteInt64(value);
            Count++;
        }
    }
}
