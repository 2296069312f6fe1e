using Google.Protobuf;

namespace ProfileArena.Tests.Support;

/// <summary>Writes raw profile.proto messages field by field with CodedOutputStream, for inputs no real
/// profiler writes (huge names, deep samples, many inlined lines). The string table goes last.</summary>
public sealed class PprofBuilder
{
    private readonly List<byte[]> _strings = [[]];
    private readonly MemoryStream _body = new();
    private readonly CodedOutputStream _out;

    public PprofBuilder() => _out = new CodedOutputStream(_body, leaveOpen: true);

    public long Str(byte[] s)
    {
        int i = _strings.FindIndex(x => x.AsSpan().SequenceEqual(s));
        if (i >= 0) return i;
        _strings.Add(s);
        return _strings.Count - 1;
    }

    public long Str(string s) => Str(System.Text.Encoding.UTF8.GetBytes(s));

    private static byte[] Message(Action<CodedOutputStream> body)
    {
        var inner = new MemoryStream();
        var o = new CodedOutputStream(inner, leaveOpen: true);
        body(o);
        o.Flush();
        return inner.ToArray();
    }

    private void Field(int field, byte[] message)
    {
        _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _out.WriteBytes(UnsafeByteOperations.UnsafeWrap(message));
    }

    private static void Varint(CodedOutputStream o, int field, ulong value)
    {
        o.WriteTag(field, WireFormat.WireType.Varint);
        o.WriteUInt64(value);
    }

    public PprofBuilder SampleType(string type, string unit)
    {
        long t = Str(type), u = Str(unit);
        Field(1, Message(o => { Varint(o, 1, (ulong)t); Varint(o, 2, (ulong)u); }));
        return this;
    }

    public PprofBuilder Function(ulong id, long name, long systemName = 0)
    {
        Field(5, Message(o =>
        {
            Varint(o, 1, id);
            Varint(o, 2, (ulong)name);
            if (systemName != 0) Varint(o, 3, (ulong)systemName);
        }));
        return this;
    }

    /// <summary>A location whose lines call these functions, innermost first.</summary>
    public PprofBuilder Location(ulong id, params ulong[] lineFunctions)
    {
        Field(4, Message(o =>
        {
            Varint(o, 1, id);
            foreach (ulong f in lineFunctions) { o.WriteTag(4, WireFormat.WireType.LengthDelimited); o.WriteBytes(ByteString.CopyFrom(Message(l => Varint(l, 1, f)))); }
        }));
        return this;
    }

    /// <summary>A sample: location ids leaf first (packed), one value per sample type (packed).</summary>
    public PprofBuilder Sample(IReadOnlyList<ulong> locations, params long[] values)
    {
        Field(2, Message(o =>
        {
            o.WriteTag(1, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(UnsafeByteOperations.UnsafeWrap(Message(p => { foreach (ulong id in locations) p.WriteUInt64(id); })));
            o.WriteTag(2, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(UnsafeByteOperations.UnsafeWrap(Message(p => { foreach (long v in values) p.WriteInt64(v); })));
        }));
        return this;
    }

    public byte[] Build()
    {
        foreach (byte[] s in _strings)
        {
            _out.WriteTag(6, WireFormat.WireType.LengthDelimited);
            _out.WriteBytes(UnsafeByteOperations.UnsafeWrap(s));
        }
        _out.Flush();
        return _body.ToArray();
    }
}
