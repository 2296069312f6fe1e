using System.IO.Compression;
using System.Runtime.InteropServices;

namespace ProfileArena.Formats;

/// <summary>
/// pprof profiles (google/pprof's profile.proto), gzip-compressed or not: the compression is detected
/// from the magic bytes 1F 8B, never from the file name.
/// </summary>
/// <remarks>
/// The messages are decoded by hand (a bounds-checked wire reader, <c>ProtoReader</c>) from these
/// definitions (field numbers of profile.proto; only the fields used are read, every other is skipped):
/// <code>
/// Profile  { repeated ValueType sample_type = 1; repeated Sample sample = 2; repeated Location location = 4;
///            repeated Function function = 5; repeated string string_table = 6; int64 time_nanos = 9;
///            int64 duration_nanos = 10; ValueType period_type = 11; int64 period = 12; int64 default_sample_type = 14; }
/// ValueType{ int64 type = 1; int64 unit = 2; }                  // indices into string_table
/// Sample   { repeated uint64 location_id = 1; repeated int64 value = 2; }   // packed or not
/// Location { uint64 id = 1; uint64 mapping_id = 2; uint64 address = 3; repeated Line line = 4; }
/// Line     { uint64 function_id = 1; int64 line = 2; }
/// Function { uint64 id = 1; int64 name = 2; int64 system_name = 3; int64 filename = 4; }
/// </code>
/// A sample's location_id[0] is the leaf; a location's lines are innermost first (line[0] was inlined
/// into line[1], …). The stack is built root first: locations from last to first, and within each
/// location its lines from last to first, so inlined frames appear as frames of their own.
/// Names: the function's name, else its system_name, else the location's address as "0x…" in hex
/// (unsymbolized profiles), else "location#ID". A ';' inside a name becomes ':' (';' separates frames).
/// A sample with no location counts under one frame "[no stack]". Import takes one sample type and
/// requires its values to be non-negative; Read delivers every type's values as they are.
/// Every malformed input ends as a <see cref="ProfileFormatException"/> whose
/// <see cref="ProfileFormatException.ByteOffset"/> is where the decompressed profile went wrong (the offset of
/// the message concerned for a bad reference); the limits are those of <see cref="PprofImportOptions"/>.
/// </remarks>
public static class PprofFormat
{
    /// <summary>Reads a pprof profile from <paramref name="input"/> and adds the chosen sample type's values to
    /// <paramref name="target"/>: all of it, or on error nothing.</summary>
    /// <exception cref="ProfileFormatException">The input is not a valid profile, the sample type does not exist,
    /// a sample refers to a missing location or function, a value is negative or a limit of
    /// <paramref name="options"/> is passed. <see cref="ProfileFormatException.LineNumber"/> is 0.</exception>
    /// <exception cref="OverflowException">The target's total would pass 2^64 − 1; the target is unchanged.</exception>
    /// <exception cref="StoreLimitExceededException">The target's store would pass a cap; the target is unchanged.</exception>
    public static PprofImportResult Import(Stream input, ProfileTree target, PprofImportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        _ = target.Store;
        options ??= new PprofImportOptions();
        using var staging = new StagedImport();
        PprofImportResult result = ImportInto(input, staging.Tree, options);
        staging.CommitInto(target);
        return result;
    }

    /// <summary>
    /// Reads a pprof profile and hands every sample, with one value per sample type, to <paramref name="sink"/>:
    /// <see cref="IPprofSampleSink.Begin"/> once, then <see cref="IPprofSampleSink.Sample"/> per sample in file order.
    /// Stacks are built exactly as <see cref="Import"/> builds them (the same decoder), within the same limits.
    /// </summary>
    /// <param name="input">A gzip-compressed or raw profile.proto; read to its end and not closed.</param>
    /// <param name="sink">Receives the profile.</param>
    /// <param name="options">Limits (<see cref="PprofImportOptions.SampleType"/> is ignored); defaults when null.</param>
    /// <exception cref="ProfileFormatException">The input is not a valid profile or passes a limit. The sink may
    /// have seen some samples already: the caller discards them.</exception>
    public static PprofReadResult Read(Stream input, IPprofSampleSink sink, PprofImportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(sink);
        options ??= new PprofImportOptions();
        options.Validate();
        byte[] data = ProfileInputBuffer.ReadAll(input, options.MaxBytes, out int length, out bool gzipped);
        using var decoder = new PprofDecoder(data, length, options);
        return decoder.Run(sink, gzipped);
    }

    /// <summary>
    /// <see cref="Read(Stream, IPprofSampleSink, PprofImportOptions?)"/> for a profile already in memory: a raw
    /// profile.proto held in an array is decoded in place, without the copy the stream overload makes (a server
    /// that receives megabyte profiles would otherwise allocate one on the Large Object Heap per profile); a
    /// gzip-compressed one goes through the stream overload.
    /// </summary>
    /// <param name="profile">A gzip-compressed or raw profile.proto; not kept after the call returns.</param>
    /// <param name="sink">Receives the profile.</param>
    /// <param name="options">Limits (<see cref="PprofImportOptions.SampleType"/> is ignored); defaults when null.</param>
    /// <exception cref="ProfileFormatException">As the stream overload.</exception>
    public static PprofReadResult ReadInPlace(ReadOnlyMemory<byte> profile, IPprofSampleSink sink, PprofImportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(sink);
        options ??= new PprofImportOptions();
        options.Validate();
        bool gzipped = IsGzip(profile.Span);
        if (gzipped || !MemoryMarshal.TryGetArray(profile, out ArraySegment<byte> segment) || segment.Offset != 0)
        {
            using var input = new MemoryStream(profile.ToArray(), writable: false);
            return Read(input, sink, options);
        }
        if (segment.Count > options.MaxBytes)
            throw ProfileFormatException.AtOffset(options.MaxBytes, $"the profile is larger than {options.MaxBytes} bytes (PprofImportOptions.MaxBytes)");
        using var decoder = new PprofDecoder(segment.Array!, segment.Count, options);
        return decoder.Run(sink, gzipped: false);
    }

    /// <summary>Tests: a raw profile.proto decoded with or without the joined location frames (<see cref="PprofDecoder"/>).</summary>
    internal static PprofReadResult ReadRaw(byte[] profile, IPprofSampleSink sink, PprofImportOptions options, bool joinLocations)
    {
        options.Validate();
        using var decoder = new PprofDecoder(profile, profile.Length, options, joinLocations);
        return decoder.Run(sink, gzipped: false);
    }

    /// <summary>True when the first bytes are gzip's magic or look like a profile.proto message
    /// (field 1 or 2, length-delimited), the test the CLI uses to tell pprof from folded text.</summary>
    public static bool LooksLikePprof(ReadOnlySpan<byte> head) =>
        IsGzip(head) || (head.Length >= 2 && head[0] is 0x0A or 0x12);

    /// <summary>True when <paramref name="head"/> starts with gzip's magic bytes 1F 8B: the one test of
    /// compression for every reader (the name of a file or a content type never decides it).</summary>
    public static bool IsGzip(ReadOnlySpan<byte> head) => head.Length >= 2 && head[0] == 0x1F && head[1] == 0x8B;

    internal static PprofImportResult ImportInto(Stream input, ProfileTree tree, PprofImportOptions options)
    {
        var sink = new SingleTypeSink(tree, options.SampleType);
        PprofReadResult read = Read(input, sink, options);
        return new PprofImportResult
        {
            SampleType = sink.TypeNames[sink.ValueIndex],
            SampleTypes = sink.TypeNames,
            Samples = read.Samples,
            Total = sink.Total,
            UnsymbolizedFrames = read.UnsymbolizedFrames,
            Gzipped = read.Gzipped,
        };
    }

    /// <summary>Import's sink: one sample type's values into one tree, checked non-negative.</summary>
    private sealed class SingleTypeSink(ProfileTree tree, string? sampleType) : IPprofSampleSink
    {
        private long _samples;

        public string[] TypeNames { get; private set; } = [];

        public int ValueIndex { get; private set; }

        public ulong Total { get; private set; }

        public void Begin(PprofProfileInfo info)
        {
            TypeNames = info.SampleTypes.Select(t => t.ToString()).ToArray();
            if (sampleType is null) return;
            ValueIndex = info.SampleTypes.ToList().FindIndex(t => t.Type == sampleType);
            if (ValueIndex < 0)
                throw new ProfileFormatException(0, $"no sample type '{sampleType}' in this profile (it has: {string.Join(", ", TypeNames)})");
        }

        public void Sample(ReadOnlySpan<byte> stack, ReadOnlySpan<long> values)
        {
            _samples++;
            long value = values[ValueIndex];
            if (value < 0)
                throw new ProfileFormatException(0, $"sample {_samples} has a negative {TypeNames[ValueIndex]} value {value} (a diff profile?); values must be non-negative");
            try
            {
                tree.Insert(stack, (ulong)value);
            }
            catch (OverflowException e)
            {
                throw new ProfileFormatException(0, $"the {TypeNames[ValueIndex]} values add up past 2^64 − 1", inner: e);
            }
            Total += (ulong)value;
        }
    }

    /// <summary>
    /// Writes <paramref name="tree"/> as a gzip-compressed profile.proto with one sample type: one sample per node
    /// with self &gt; 0 (its stack as locations, leaf first; a self above 2^63 − 1 is split over two or three
    /// samples of the same stack), one Function and one Location per distinct frame name, a deduplicated string
    /// table. <see cref="Import"/> of the output gives back the same tree, except for paths that carry no value
    /// (nodes whose total is 0) and empty frame names (pprof's readers name those by their location, so Import
    /// reads "location#ID").
    /// </summary>
    /// <param name="tree">The tree to write.</param>
    /// <param name="output">Receives the gzip stream; not closed.</param>
    /// <param name="options">Sample type, unit, period and times; defaults when null.</param>
    /// <returns>The number of samples written.</returns>
    public static long Export(ProfileTree tree, Stream output, PprofExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        return PprofWriter.Write(tree, output, options ?? new PprofExportOptions());
    }

    internal static Stream Decompressing(byte[] magic, Stream rest) =>
        new GZipStream(new PrefixedStream(magic, rest), CompressionMode.Decompress, leaveOpen: true);

    /// <summary>Bytes already read from a stream, then the rest of the stream.</summary>
    private sealed class PrefixedStream(byte[] prefix, Stream rest) : Stream
    {
        private int _used;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_used < prefix.Length)
            {
                int n = Math.Min(buffer.Length, prefix.Length - _used);
                prefix.AsSpan(_used, n).CopyTo(buffer);
                _used += n;
                return n;
            }
            return rest.Read(buffer);
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
