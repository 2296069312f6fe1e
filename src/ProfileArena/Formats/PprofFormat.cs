using System.Buffers;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using Google.Protobuf;

namespace ProfileArena.Formats;

/// <summary>Options of <see cref="PprofFormat.Import(Stream, ProfileTree, PprofImportOptions?)"/>.</summary>
public sealed class PprofImportOptions
{
    /// <summary>The sample type to import, by its type name (e.g. "cpu", "samples", "alloc_space");
    /// null (default) takes the first sample type of the profile.</summary>
    public string? SampleType { get; init; }

    /// <summary>Largest decompressed profile accepted, in bytes (default 1 GiB).</summary>
    public long MaxBytes { get; init; } = 1L << 30;
}

/// <summary>What a pprof import read.</summary>
public sealed class PprofImportResult
{
    /// <summary>The sample type imported, as "type/unit".</summary>
    public string SampleType { get; init; } = "";

    /// <summary>All sample types of the profile, as "type/unit", in order.</summary>
    public IReadOnlyList<string> SampleTypes { get; init; } = [];

    /// <summary>Samples imported.</summary>
    public long Samples { get; init; }

    /// <summary>Sum of the imported values.</summary>
    public ulong Total { get; init; }

    /// <summary>Frames named by the fallback (no function, or a function without a name).</summary>
    public long UnsymbolizedFrames { get; init; }

    /// <summary>True when the input was gzip-compressed (detected by its magic bytes).</summary>
    public bool Gzipped { get; init; }
}

/// <summary>
/// pprof profiles (google/pprof's profile.proto), gzip-compressed or not: the compression is detected
/// from the magic bytes 1F 8B, never from the file name.
/// </summary>
/// <remarks>
/// The messages are decoded by hand with <see cref="CodedInputStream"/> from these definitions
/// (field numbers of profile.proto; only the fields used are read, every other is skipped):
/// <code>
/// Profile  { repeated ValueType sample_type = 1; repeated Sample sample = 2; repeated Location location = 4;
///            repeated Function function = 5; repeated string string_table = 6; }
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
/// A sample with no location counts under one frame "[no stack]". Values must be non-negative.
/// </remarks>
public static class PprofFormat
{
    /// <summary>Reads a pprof profile from <paramref name="input"/> and adds the chosen sample type's values to
    /// <paramref name="target"/>: all of it, or on error nothing.</summary>
    /// <exception cref="ProfileFormatException">The input is not a valid profile, the sample type does not exist,
    /// a sample refers to a missing location or function, or a value is negative. <see cref="ProfileFormatException.LineNumber"/> is 0.</exception>
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

    /// <summary>True when the first bytes are gzip's magic or look like a profile.proto message
    /// (field 1 or 2, length-delimited), the test the CLI uses to tell pprof from folded text.</summary>
    public static bool LooksLikePprof(ReadOnlySpan<byte> head) =>
        head.Length >= 2 && ((head[0] == 0x1F && head[1] == 0x8B) || head[0] is 0x0A or 0x12);

    internal static PprofImportResult ImportInto(Stream input, ProfileTree tree, PprofImportOptions options)
    {
        byte[] data = ReadAll(input, options.MaxBytes, out int length, out bool gzipped);
        try
        {
            var profile = new Profile(data, length);
            profile.ReadTables();
            return profile.InsertSamples(tree, options.SampleType, gzipped);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new ProfileFormatException(0, $"not a valid pprof profile: {e.Message}", inner: e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(data);
        }
    }

    private static byte[] ReadAll(Stream input, long max, out int length, out bool gzipped)
    {
        byte[] head = new byte[2];
        int n = input.ReadAtLeast(head, 2, throwOnEndOfStream: false);
        gzipped = n == 2 && head[0] == 0x1F && head[1] == 0x8B;
        Stream source = input;
        GZipStream? gzip = null;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(64 << 10);
        length = 0;
        try
        {
            if (gzipped)
            {
                // The two magic bytes were consumed: hand them back in front of the rest.
                source = gzip = new GZipStream(new PrefixedStream(head, input), CompressionMode.Decompress, leaveOpen: true);
            }
            else
            {
                head.AsSpan(0, n).CopyTo(buffer);
                length = n;
            }
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (buffer.Length >= max || buffer.Length >= Array.MaxLength / 2)
                        throw new ProfileFormatException(0, $"profile larger than {max} bytes (PprofImportOptions.MaxBytes)");
                    byte[] bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                int read = source.Read(buffer, length, buffer.Length - length);
                if (read == 0) break;
                length += read;
            }
            if (length > max) throw new ProfileFormatException(0, $"profile larger than {max} bytes (PprofImportOptions.MaxBytes)");
            return buffer;
        }
        catch (InvalidDataException e)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw new ProfileFormatException(0, $"corrupt gzip data: {e.Message}", inner: e);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
        finally
        {
            gzip?.Dispose();
        }
    }

    private const int WireVarint = 0, WireLength = 2;

    /// <summary>The decoded tables of one profile; names stay as byte ranges of the raw data.</summary>
    private sealed class Profile(byte[] data, int length)
    {
        private readonly List<(int Start, int Length)> _strings = [];
        private readonly List<(long Type, long Unit)> _sampleTypes = [];
        private readonly Dictionary<ulong, (long Name, long SystemName)> _functions = [];
        private readonly Dictionary<ulong, (int FirstLine, int LineCount, ulong Address)> _locations = [];
        private readonly List<ulong> _lineFunctions = [];
        private readonly List<(int Start, int End)> _samples = [];

        public void ReadTables()
        {
            var input = new CodedInputStream(data, 0, length);
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                int field = WireFormat.GetTagFieldNumber(tag);
                if (field is >= 1 and <= 6 and not 3 && WireFormat.GetTagWireType(tag) == (WireFormat.WireType)WireLength)
                {
                    int start = (int)input.Position;
                    input.SkipLastField();
                    int end = (int)input.Position;
                    int content = start + VarintLength(start, out int len);
                    if (content + len != end) throw new ProfileFormatException(0, "not a valid pprof profile: bad length prefix");
                    switch (field)
                    {
                        case 1: ReadValueType(content, len); break;
                        case 2: _samples.Add((content, end)); break;
                        case 4: ReadLocation(content, len); break;
                        case 5: ReadFunction(content, len); break;
                        case 6: _strings.Add((content, len)); break;
                    }
                }
                else
                {
                    input.SkipLastField();
                }
            }
        }

        private int VarintLength(int at, out int value)
        {
            ulong v = 0;
            for (int i = 0, shift = 0; i < 10 && at + i < length; i++, shift += 7)
            {
                byte b = data[at + i];
                v |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                {
                    if (v > int.MaxValue) break;
                    value = (int)v;
                    return i + 1;
                }
            }
            throw new ProfileFormatException(0, "not a valid pprof profile: bad length prefix");
        }

        private void ReadValueType(int start, int len)
        {
            var input = new CodedInputStream(data, start, len);
            long type = 0, unit = 0;
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                switch (tag)
                {
                    case (1 << 3) | WireVarint: type = input.ReadInt64(); break;
                    case (2 << 3) | WireVarint: unit = input.ReadInt64(); break;
                    default: input.SkipLastField(); break;
                }
            }
            _sampleTypes.Add((type, unit));
        }

        private void ReadFunction(int start, int len)
        {
            var input = new CodedInputStream(data, start, len);
            ulong id = 0;
            long name = 0, systemName = 0;
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                switch (tag)
                {
                    case (1 << 3) | WireVarint: id = input.ReadUInt64(); break;
                    case (2 << 3) | WireVarint: name = input.ReadInt64(); break;
                    case (3 << 3) | WireVarint: systemName = input.ReadInt64(); break;
                    default: input.SkipLastField(); break;
                }
            }
            _functions[id] = (name, systemName);
        }

        private void ReadLocation(int start, int len)
        {
            var input = new CodedInputStream(data, start, len);
            ulong id = 0, address = 0;
            int first = _lineFunctions.Count;
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                switch (tag)
                {
                    case (1 << 3) | WireVarint: id = input.ReadUInt64(); break;
                    case (3 << 3) | WireVarint: address = input.ReadUInt64(); break;
                    case (4 << 3) | WireLength:
                    {
                        // A nested Line message: read its fields in place (positions are relative).
                        int lineLength = input.ReadLength();
                        long lineEnd = input.Position + lineLength;
                        ulong function = 0;
                        while (input.Position < lineEnd)
                        {
                            uint lineTag = input.ReadTag();
                            if (lineTag == ((1 << 3) | WireVarint)) function = input.ReadUInt64();
                            else input.SkipLastField();
                        }
                        if (input.Position != lineEnd) throw new ProfileFormatException(0, "not a valid pprof profile: a Line message overruns its length");
                        _lineFunctions.Add(function);
                        break;
                    }
                    default: input.SkipLastField(); break;
                }
            }
            _locations[id] = (first, _lineFunctions.Count - first, address);
        }

        private ReadOnlySpan<byte> String(long index)
        {
            if ((ulong)index >= (ulong)_strings.Count)
                throw new ProfileFormatException(0, $"string index {index} is outside the string table ({_strings.Count} strings)");
            (int start, int len) = _strings[(int)index];
            return data.AsSpan(start, len);
        }

        private string TypeName((long Type, long Unit) t) =>
            Encoding.UTF8.GetString(String(t.Type)) + "/" + Encoding.UTF8.GetString(String(t.Unit));

        public PprofImportResult InsertSamples(ProfileTree tree, string? sampleType, bool gzipped)
        {
            if (_strings.Count == 0 || String(0).Length != 0)
                throw new ProfileFormatException(0, "not a valid pprof profile: the string table must start with the empty string");
            if (_sampleTypes.Count == 0)
                throw new ProfileFormatException(0, "the profile declares no sample type");
            string[] typeNames = _sampleTypes.Select(TypeName).ToArray();
            int valueIndex = 0;
            if (sampleType is not null)
            {
                valueIndex = _sampleTypes.FindIndex(t => Encoding.UTF8.GetString(String(t.Type)) == sampleType);
                if (valueIndex < 0)
                    throw new ProfileFormatException(0, $"no sample type '{sampleType}' in this profile (it has: {string.Join(", ", typeNames)})");
            }

            var key = new KeyBuilder();
            var locationIds = new List<ulong>();
            long unsymbolized = 0, count = 0;
            ulong total = 0;
            try
            {
                foreach ((int start, int end) in _samples)
                {
                    locationIds.Clear();
                    long value = 0;
                    int valueCount = 0;
                    var input = new CodedInputStream(data, start, end - start);
                    uint tag;
                    while ((tag = input.ReadTag()) != 0)
                    {
                        switch (tag)
                        {
                            case (1 << 3) | WireVarint: locationIds.Add(input.ReadUInt64()); break;
                            case (1 << 3) | WireLength:
                                ReadPacked(input, v => locationIds.Add(v));
                                break;
                            case (2 << 3) | WireVarint:
                                if (valueCount++ == valueIndex) value = input.ReadInt64(); else input.ReadInt64();
                                break;
                            case (2 << 3) | WireLength:
                            {
                                int length = input.ReadLength();
                                long endPos = input.Position + length;
                                while (input.Position < endPos)
                                {
                                    long v = input.ReadInt64();
                                    if (valueCount++ == valueIndex) value = v;
                                }
                                break;
                            }
                            default: input.SkipLastField(); break;
                        }
                    }
                    if (valueCount != _sampleTypes.Count)
                        throw new ProfileFormatException(0, $"sample {count + 1} has {valueCount} values for {_sampleTypes.Count} sample types");
                    if (value < 0)
                        throw new ProfileFormatException(0, $"sample {count + 1} has a negative {typeNames[valueIndex]} value {value} (a diff profile?); values must be non-negative");

                    key.Clear();
                    if (locationIds.Count == 0) key.AppendFrame("[no stack]"u8);
                    for (int i = locationIds.Count - 1; i >= 0; i--)
                    {
                        if (!_locations.TryGetValue(locationIds[i], out var location))
                            throw new ProfileFormatException(0, $"sample {count + 1} refers to location {locationIds[i]}, which the profile does not define");
                        if (location.LineCount == 0)
                        {
                            unsymbolized++;
                            key.AppendAddress(location.Address, locationIds[i]);
                            continue;
                        }
                        for (int l = location.FirstLine + location.LineCount - 1; l >= location.FirstLine; l--)
                        {
                            ulong functionId = _lineFunctions[l];
                            if (!_functions.TryGetValue(functionId, out var function))
                            {
                                if (functionId != 0)
                                    throw new ProfileFormatException(0, $"location {locationIds[i]} refers to function {functionId}, which the profile does not define");
                                unsymbolized++;
                                key.AppendAddress(location.Address, locationIds[i]);
                                continue;
                            }
                            ReadOnlySpan<byte> name = String(function.Name);
                            if (name.IsEmpty) name = String(function.SystemName);
                            if (name.IsEmpty)
                            {
                                unsymbolized++;
                                key.AppendAddress(location.Address, locationIds[i]);
                            }
                            else
                            {
                                key.AppendFrame(name);
                            }
                        }
                    }
                    tree.Insert(key.Span, (ulong)value);
                    total += (ulong)value;
                    count++;
                }
            }
            catch (OverflowException e)
            {
                throw new ProfileFormatException(0, $"the {typeNames[valueIndex]} values add up past 2^64 − 1", inner: e);
            }
            finally
            {
                key.Dispose();
            }
            return new PprofImportResult
            {
                SampleType = typeNames[valueIndex],
                SampleTypes = typeNames,
                Samples = count,
                Total = total,
                UnsymbolizedFrames = unsymbolized,
                Gzipped = gzipped,
            };
        }

        private static void ReadPacked(CodedInputStream input, Action<ulong> add)
        {
            int length = input.ReadLength();
            long end = input.Position + length;
            while (input.Position < end) add(input.ReadUInt64());
        }
    }

    /// <summary>The key of one sample, built in a pooled buffer.</summary>
    private sealed class KeyBuilder : IDisposable
    {
        private byte[] _buffer = ArrayPool<byte>.Shared.Rent(4096);
        private int _length;

        public ReadOnlySpan<byte> Span => _buffer.AsSpan(0, _length);

        public void Clear() => _length = 0;

        private Span<byte> Reserve(int bytes)
        {
            if (_buffer.Length - _length < bytes)
            {
                byte[] bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _length + bytes));
                _buffer.AsSpan(0, _length).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = bigger;
            }
            return _buffer.AsSpan(_length, bytes);
        }

        public void AppendFrame(ReadOnlySpan<byte> name)
        {
            int sep = _length > 0 ? 1 : 0;
            Span<byte> span = Reserve(name.Length + sep);
            if (sep == 1) span[0] = (byte)';';
            name.CopyTo(span[sep..]);
            span[sep..].Replace((byte)';', (byte)':');
            _length += span.Length;
        }

        public void AppendAddress(ulong address, ulong locationId)
        {
            Span<byte> text = stackalloc byte[32];
            int n;
            if (address != 0)
            {
                "0x"u8.CopyTo(text);
                address.TryFormat(text[2..], out n, "x", CultureInfo.InvariantCulture);
                n += 2;
            }
            else
            {
                "location#"u8.CopyTo(text);
                locationId.TryFormat(text[9..], out n, default, CultureInfo.InvariantCulture);
                n += 9;
            }
            AppendFrame(text[..n]);
        }

        public void Dispose()
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }

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
