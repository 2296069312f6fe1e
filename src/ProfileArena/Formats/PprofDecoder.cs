using System.Buffers;
using System.Globalization;
using System.Text;

namespace ProfileArena.Formats;

/// <summary>
/// Decodes one profile.proto message held whole in a buffer: the tables first (a profile's fields may
/// come in any order), then the samples one by one into an <see cref="IPprofSampleSink"/>. The one
/// decoder behind both <see cref="PprofFormat.Read"/> and <see cref="PprofFormat.Import"/>.
/// </summary>
/// <remarks>Names stay byte ranges of the buffer. Each location's frames are joined once, at its second use, and each
/// later sample copies one run of bytes per location into the one key buffer (resolving a location's lines again at
/// every use made large.cpu's parse 38 ms instead of 24). Memory is the buffer, tables proportional to it (the joined
/// frames at most 4 × it), and the key (at most MaxStackBytes).</remarks>
/// <param name="data">The buffer holding the profile.proto message from offset 0.</param>
/// <param name="length">The message's length in bytes.</param>
/// <param name="options">Limits.</param>
/// <param name="joinLocations">False: every location resolved frame by frame at every use, as before the joined
/// frames (tests compare both ways).</param>
internal sealed class PprofDecoder(byte[] data, int length, PprofImportOptions options, bool joinLocations = true) : IDisposable
{
    private readonly PooledList<(int Start, int Length)> _strings = new();
    private readonly List<(long Type, long Unit, int Offset)> _sampleTypes = [];
    private readonly PooledIdMap<(long Name, long SystemName)> _functions = new();
    /// <summary>Per location id: its lines, address, offset, and its joined frames (0: not used yet, <see cref="Unjoined"/>:
    /// used once, <see cref="CannotJoin"/>, else an index + 1 into <see cref="_joined"/>).</summary>
    private readonly PooledIdMap<(int FirstLine, int LineCount, ulong Address, int Offset, int Joined)> _locations = new();
    private readonly PooledList<ulong> _lineFunctions = new();
    private readonly PooledList<(int Start, int End)> _samples = new();
    private readonly PooledList<LocationFrames> _joined = new();
    private const int Unjoined = -1, CannotJoin = -2;
    private readonly PooledList<byte> _frameBytes = new();
    /// <summary>Bytes of cached frames past which no further location is cached: proportional to the profile (a
    /// location of many lines naming one long string would otherwise cost more than the profile itself).</summary>
    private readonly long _frameBytesCap = 4L * length + (64 << 10);
    private (long Type, long Unit, int Offset) _periodType;
    private long _period, _timeNanos, _durationNanos, _defaultSampleType;
    private int _defaultSampleTypeOffset;

    /// <summary>Gives the tables' pooled arrays back (the tables of a megabyte profile are past the Large Object Heap threshold).</summary>
    public void Dispose()
    {
        _strings.Dispose();
        _functions.Dispose();
        _locations.Dispose();
        _lineFunctions.Dispose();
        _samples.Dispose();
        _joined.Dispose();
        _frameBytes.Dispose();
    }

    /// <summary>Decodes the tables, then hands every sample to <paramref name="sink"/>.</summary>
    public PprofReadResult Run(IPprofSampleSink sink, bool gzipped)
    {
        ReadTables();
        PprofProfileInfo info = Info();
        sink.Begin(info);
        (long samples, long unsymbolized) = ReadSamples(sink);
        return new PprofReadResult { Info = info, Samples = samples, UnsymbolizedFrames = unsymbolized, Gzipped = gzipped };
    }

    private void ReadTables()
    {
        var profile = new ProtoReader(data, 0, length);
        while (profile.NextField(out int field, out int wire))
        {
            int at = profile.Position;
            switch (field, wire)
            {
                case (1, ProtoReader.LengthDelimited): _sampleTypes.Add(ReadValueType(profile.ReadMessage(), at)); break;
                case (2, ProtoReader.LengthDelimited): _samples.Add(profile.ReadLengthDelimited()); break;
                case (4, ProtoReader.LengthDelimited): ReadLocation(profile.ReadMessage(), at); break;
                case (5, ProtoReader.LengthDelimited): ReadFunction(profile.ReadMessage()); break;
                case (6, ProtoReader.LengthDelimited):
                    (int s, int e) = profile.ReadLengthDelimited();
                    _strings.Add((s, e - s));
                    break;
                case (9, ProtoReader.Varint): _timeNanos = profile.ReadInt64(); break;
                case (10, ProtoReader.Varint): _durationNanos = profile.ReadInt64(); break;
                case (11, ProtoReader.LengthDelimited): _periodType = ReadValueType(profile.ReadMessage(), at); break;
                case (12, ProtoReader.Varint): _period = profile.ReadInt64(); break;
                case (14, ProtoReader.Varint):
                    _defaultSampleTypeOffset = at;
                    _defaultSampleType = profile.ReadInt64();
                    break;
                default: profile.Skip(wire); break;
            }
        }
    }

    private static (long Type, long Unit, int Offset) ReadValueType(ProtoReader message, int at)
    {
        long type = 0, unit = 0;
        while (message.NextField(out int field, out int wire))
        {
            switch (field, wire)
            {
                case (1, ProtoReader.Varint): type = message.ReadInt64(); break;
                case (2, ProtoReader.Varint): unit = message.ReadInt64(); break;
                default: message.Skip(wire); break;
            }
        }
        return (type, unit, at);
    }

    private void ReadFunction(ProtoReader message)
    {
        ulong id = 0;
        long name = 0, systemName = 0;
        while (message.NextField(out int field, out int wire))
        {
            switch (field, wire)
            {
                case (1, ProtoReader.Varint): id = message.ReadVarint(); break;
                case (2, ProtoReader.Varint): name = message.ReadInt64(); break;
                case (3, ProtoReader.Varint): systemName = message.ReadInt64(); break;
                default: message.Skip(wire); break;
            }
        }
        _functions[id] = (name, systemName);
    }

    private void ReadLocation(ProtoReader message, int at)
    {
        ulong id = 0, address = 0;
        int first = _lineFunctions.Count;
        while (message.NextField(out int field, out int wire))
        {
            switch (field, wire)
            {
                case (1, ProtoReader.Varint): id = message.ReadVarint(); break;
                case (3, ProtoReader.Varint): address = message.ReadVarint(); break;
                case (4, ProtoReader.LengthDelimited):
                {
                    ProtoReader line = message.ReadMessage();
                    ulong function = 0;
                    while (line.NextField(out int lineField, out int lineWire))
                    {
                        if ((lineField, lineWire) == (1, ProtoReader.Varint)) function = line.ReadVarint();
                        else line.Skip(lineWire);
                    }
                    _lineFunctions.Add(function);
                    break;
                }
                default: message.Skip(wire); break;
            }
        }
        _locations[id] = (first, _lineFunctions.Count - first, address, at, 0);
    }

    private ReadOnlySpan<byte> String(long index, int offset)
    {
        if ((ulong)index >= (ulong)_strings.Count)
            throw ProfileFormatException.AtOffset(offset, $"string index {index} is outside the string table ({_strings.Count} strings)");
        (int start, int len) = _strings[(int)index];
        return data.AsSpan(start, len);
    }

    private string Text(long index, int offset) => Encoding.UTF8.GetString(String(index, offset));

    private PprofProfileInfo Info()
    {
        if (_strings.Count == 0 || _strings[0].Length != 0)
            throw ProfileFormatException.AtOffset(_strings.Count == 0 ? 0 : _strings[0].Start,
                "not a valid pprof profile: the string table must start with the empty string");
        if (_sampleTypes.Count == 0)
            throw ProfileFormatException.AtOffset(0, "the profile declares no sample type");
        return new PprofProfileInfo
        {
            SampleTypes = _sampleTypes.Select(t => new PprofValueType(Text(t.Type, t.Offset), Text(t.Unit, t.Offset))).ToArray(),
            PeriodType = new PprofValueType(Text(_periodType.Type, _periodType.Offset), Text(_periodType.Unit, _periodType.Offset)),
            Period = _period,
            TimeNanos = _timeNanos,
            DurationNanos = _durationNanos,
            DefaultSampleType = Text(_defaultSampleType, _defaultSampleTypeOffset),
        };
    }

    /// <summary>Collects a sample's location ids, refusing more than can fit in a stack.</summary>
    private struct LocationIds(List<ulong> ids, int max, int sampleOffset) : IVarintSink
    {
        public void Add(ulong value)
        {
            if (ids.Count >= max)
                throw ProfileFormatException.AtOffset(sampleOffset, $"a sample has more than {max} frames (PprofImportOptions.MaxStackFrames)");
            ids.Add(value);
        }
    }

    /// <summary>Collects a sample's values: one per sample type; more are counted, not kept.</summary>
    private struct Values(long[] values) : IVarintSink
    {
        public int Count;

        public void Add(ulong value)
        {
            if (Count < values.Length) values[Count] = (long)value;
            Count++;
        }
    }

    private (long Samples, long Unsymbolized) ReadSamples(IPprofSampleSink sink)
    {
        var ids = new List<ulong>();
        long[] values = new long[_sampleTypes.Count];
        long totalFramesBudget = Math.Max(options.MaxStackFrames, (long)options.MaxFramesPerInputByte * length);
        using var key = new KeyBuilder(options.MaxStackBytes, options.MaxStackFrames, totalFramesBudget);
        long count = 0;
        foreach ((int start, int end) in _samples.AsSpan())
        {
            int offset = start;
            key.SampleOffset = offset;
            ids.Clear();
            var idSink = new LocationIds(ids, options.MaxStackFrames, offset);
            var valueSink = new Values(values);
            var sample = new ProtoReader(data, start, end);
            while (sample.NextField(out int field, out int wire))
            {
                switch (field)
                {
                    case 1: sample.ReadRepeatedVarint(wire, ref idSink); break;
                    case 2: sample.ReadRepeatedVarint(wire, ref valueSink); break;
                    default: sample.Skip(wire); break;
                }
            }
            if (valueSink.Count != values.Length)
                throw ProfileFormatException.AtOffset(offset, $"sample {count + 1} has {valueSink.Count} values for {values.Length} sample types");

            key.Clear();
            if (ids.Count == 0) key.AppendFrame("[no stack]"u8);
            for (int i = ids.Count - 1; i >= 0; i--)
            {
                ulong id = ids[i];
                if (!_locations.TryGetSlot(id, out int slot))
                    throw ProfileFormatException.AtOffset(offset, $"sample {count + 1} refers to location {id}, which the profile does not define");
                ref var location = ref _locations.ValueAt(slot);
                // Joined at its second use: a location used once (a profile of one sample per call-tree node, as an
                // export writes, uses most locations about twice) would pay the join and gain nothing.
                if (joinLocations && location.Joined == 0) location.Joined = Unjoined;
                else if (joinLocations && location.Joined == Unjoined)
                {
                    LocationFrames built = BuildFrames(id, (location.FirstLine, location.LineCount, location.Address, location.Offset));
                    if (built.Length < 0) location.Joined = CannotJoin;
                    else
                    {
                        _joined.Add(built);
                        location.Joined = _joined.Count;
                    }
                }
                if (location.Joined <= 0 || !key.TryAppendFrames(_joined[location.Joined - 1], _frameBytes)) // frame by frame: the same checks, in the same order, the same error
                    AppendLocation(key, id, (location.FirstLine, location.LineCount, location.Address, location.Offset));
            }
            try
            {
                sink.Sample(key.Span, values);
            }
            catch (ProfileFormatException e) when (e.ByteOffset < 0 && e.LineNumber == 0)
            {
                throw ProfileFormatException.AtOffset(offset, e.Reason, e); // the sink's reason, at this sample
            }
            count++;
        }
        return (count, key.Unsymbolized);
    }

    /// <summary>Appends location <paramref name="id"/>'s frames one by one, each checked against the stack limits
    /// before it is copied, and refuses a reference to a missing function or string where it comes: the path of a
    /// location <see cref="BuildFrames"/> could not cache, and of one whose cached frames would pass a limit.</summary>
    private void AppendLocation(KeyBuilder key, ulong id, (int FirstLine, int LineCount, ulong Address, int Offset) location)
    {
        if (location.LineCount == 0)
        {
            key.AppendAddress(location.Address, id);
            return;
        }
        for (int l = location.FirstLine + location.LineCount - 1; l >= location.FirstLine; l--)
        {
            ulong functionId = _lineFunctions[l];
            if (!_functions.TryGetValue(functionId, out var function))
            {
                if (functionId != 0)
                    throw ProfileFormatException.AtOffset(location.Offset, $"location {id} refers to function {functionId}, which the profile does not define");
                key.AppendAddress(location.Address, id);
                continue;
            }
            ReadOnlySpan<byte> name = String(function.Name, location.Offset);
            if (name.IsEmpty) name = String(function.SystemName, location.Offset);
            if (name.IsEmpty) key.AppendAddress(location.Address, id);
            else key.AppendFrame(name);
        }
    }

    /// <summary>
    /// The frames location <paramref name="id"/> adds to a stack (<c>a;b</c>, root side first, ';' in names already
    /// ':'), built once at its second use into <see cref="_frameBytes"/> so that each sample copies one run of bytes
    /// instead of resolving every line's function and string again. Not cached (Length −1, the per-line path then runs
    /// each time) when it refers to a missing function or string (an error the per-line path raises at its frame),
    /// when its frames alone pass MaxStackBytes, or when the cache has grown past <see cref="_frameBytesCap"/>.
    /// </summary>
    private LocationFrames BuildFrames(ulong id, (int FirstLine, int LineCount, ulong Address, int Offset) location)
    {
        var uncached = new LocationFrames(0, -1, 0, 0);
        if (_frameBytes.Count > _frameBytesCap) return uncached;
        int start = _frameBytes.Count, frames = 0, unsymbolized = 0;
        Span<byte> address = stackalloc byte[32];
        for (int l = location.FirstLine + location.LineCount - 1; l >= location.FirstLine || (location.LineCount == 0 && frames == 0); l--)
        {
            scoped ReadOnlySpan<byte> name = default;
            if (location.LineCount > 0)
            {
                ulong functionId = _lineFunctions[l];
                if (_functions.TryGetValue(functionId, out var function))
                {
                    if (!TryString(function.Name, out name) || (name.IsEmpty && !TryString(function.SystemName, out name)))
                    {
                        _frameBytes.Truncate(start);
                        return uncached;
                    }
                }
                else if (functionId != 0)
                {
                    _frameBytes.Truncate(start);
                    return uncached;
                }
            }
            if (name.IsEmpty)
            {
                name = address[..FormatAddress(location.Address, id, address)];
                unsymbolized++;
            }
            if (frames > 0) _frameBytes.Add((byte)';');
            int at = _frameBytes.Count;
            _frameBytes.AddRange(name);
            _frameBytes.AsWritableSpan(at, name.Length).Replace((byte)';', (byte)':');
            frames++;
            if (_frameBytes.Count - start > options.MaxStackBytes)
            {
                _frameBytes.Truncate(start);
                return uncached;
            }
        }
        return new LocationFrames(start, _frameBytes.Count - start, frames, unsymbolized);
    }

    private bool TryString(long index, out ReadOnlySpan<byte> value)
    {
        value = default;
        if ((ulong)index >= (ulong)_strings.Count) return false;
        (int start, int len) = _strings[(int)index];
        value = data.AsSpan(start, len);
        return true;
    }

    /// <summary>The name of a frame without a symbol: its address as "0x…" in hex, else "location#ID".</summary>
    private static int FormatAddress(ulong address, ulong locationId, Span<byte> text)
    {
        int n;
        if (address != 0)
        {
            "0x"u8.CopyTo(text);
            address.TryFormat(text[2..], out n, "x", CultureInfo.InvariantCulture);
            return n + 2;
        }
        "location#"u8.CopyTo(text);
        locationId.TryFormat(text[9..], out n, default, CultureInfo.InvariantCulture);
        return n + 9;
    }

    /// <summary>A location's cached frames: <see cref="Count"/> frames in <see cref="Length"/> bytes of
    /// <see cref="_frameBytes"/> from <see cref="Start"/> (Length −1: not cached), <see cref="Unsymbolized"/> of them named by address.</summary>
    private readonly record struct LocationFrames(int Start, int Length, int Count, int Unsymbolized);

    /// <summary>The key of one sample, built in a pooled buffer that never grows past the stack limits:
    /// each frame is checked against them before a byte is copied.</summary>
    private sealed class KeyBuilder(int maxBytes, int maxFrames, long totalFramesBudget) : IDisposable
    {
        private byte[] _buffer = ArrayPool<byte>.Shared.Rent(Math.Min(4096, maxBytes));
        private int _length, _frames;
        private long _totalFrames;

        public int SampleOffset { get; set; }

        public long Unsymbolized { get; private set; }

        public ReadOnlySpan<byte> Span => _buffer.AsSpan(0, _length);

        public void Clear() => _length = _frames = 0;

        public void AppendFrame(ReadOnlySpan<byte> name)
        {
            int separator = _length > 0 ? 1 : 0;
            if (_frames >= maxFrames)
                throw ProfileFormatException.AtOffset(SampleOffset, $"a sample has more than {maxFrames} frames (PprofImportOptions.MaxStackFrames)");
            if (name.Length > maxBytes - _length - separator) // no overflow: _length ≤ maxBytes ≤ 2^30
                throw ProfileFormatException.AtOffset(SampleOffset, $"a sample's stack is longer than {maxBytes} bytes (PprofImportOptions.MaxStackBytes)");
            if (++_totalFrames > totalFramesBudget)
                throw ProfileFormatException.AtOffset(SampleOffset,
                    $"the samples expand to more than {totalFramesBudget} frames in all (PprofImportOptions.MaxFramesPerInputByte per byte of profile)");
            Span<byte> span = Append(separator, name);
            span.Replace((byte)';', (byte)':');
            _frames++;
        }

        /// <summary>Appends a location's joined frames (in <paramref name="frameBytes"/>) when
        /// all of them fit the limits; false, with nothing appended, when one would not (the caller then appends them one
        /// by one, so the error is the one the first frame past a limit raises).</summary>
        public bool TryAppendFrames(LocationFrames location, PooledList<byte> frameBytes)
        {
            int frames = location.Count, unsymbolized = location.Unsymbolized;
            ReadOnlySpan<byte> joined = frameBytes.AsSpan(location.Start, location.Length);
            int separator = _length > 0 ? 1 : 0;
            if (frames > maxFrames - _frames || joined.Length > maxBytes - _length - separator || frames > totalFramesBudget - _totalFrames) return false;
            Append(separator, joined);
            _frames += frames;
            _totalFrames += frames;
            Unsymbolized += unsymbolized;
            return true;
        }

        /// <summary>Copies a separator (when <paramref name="separator"/> is 1) and <paramref name="bytes"/>; returns where the bytes went.</summary>
        private Span<byte> Append(int separator, ReadOnlySpan<byte> bytes)
        {
            int needed = _length + separator + bytes.Length;
            if (needed > _buffer.Length)
            {
                byte[] bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(Math.Max((long)_buffer.Length * 2, needed), maxBytes));
                _buffer.AsSpan(0, _length).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = bigger;
            }
            Span<byte> span = _buffer.AsSpan(_length, separator + bytes.Length);
            if (separator == 1) span[0] = (byte)';';
            bytes.CopyTo(span[separator..]);
            _length = needed;
            return span[separator..];
        }

        public void AppendAddress(ulong address, ulong locationId)
        {
            Unsymbolized++;
            Span<byte> text = stackalloc byte[32];
            AppendFrame(text[..FormatAddress(address, locationId, text)]);
        }

        public void Dispose()
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }
}
