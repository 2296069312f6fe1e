namespace ProfileArena.Formats;

/// <summary>
/// A bounds-checked reader of the protobuf wire format over one message of a buffer. Positions are
/// absolute offsets into the buffer, so every error names the byte where the input went wrong, and the
/// only exception it throws is <see cref="ProfileFormatException"/> (Google.Protobuf's CodedInputStream
/// throws InvalidOperationException on some malformed nesting and counts positions per sub-stream).
/// </summary>
internal struct ProtoReader(byte[] data, int start, int end)
{
    public const int Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5;

    private int _position = start;

    /// <summary>Offset of the next byte to read.</summary>
    public readonly int Position => _position;

    /// <summary>Reads the next field's tag; false at the end of the message.</summary>
    public bool NextField(out int field, out int wireType)
    {
        field = wireType = 0;
        if (_position >= end) return false;
        int at = _position;
        ulong tag = ReadVarint();
        wireType = (int)(tag & 7);
        ulong number = tag >> 3;
        if (number is 0 or > (1 << 29) - 1) throw Error(at, $"invalid field number {number}");
        if (wireType is not (Varint or Fixed64 or LengthDelimited or Fixed32))
            throw Error(at, $"field {number} has wire type {wireType}, which profile.proto never uses");
        field = (int)number;
        return true;
    }

    /// <summary>Reads a base-128 varint of at most 10 bytes.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public ulong ReadVarint()
    {
        // Most of a profile's varints (tags, ids, indices, small values) are one byte: read those inline.
        if (_position < end && data[_position] < 0x80) return data[_position++];
        return ReadLongVarint();
    }

    private ulong ReadLongVarint()
    {
        int at = _position;
        ulong value = 0;
        for (int shift = 0; shift < 70; shift += 7)
        {
            if (_position >= end) throw Error(at, "a varint runs past the end of its message");
            byte b = data[_position++];
            if (shift == 63 && b > 1) throw Error(at, "a varint is longer than 64 bits");
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
        throw Error(at, "a varint is longer than 10 bytes");
    }

    /// <summary>Reads a varint as protobuf's int64 (two's complement).</summary>
    public long ReadInt64() => (long)ReadVarint();

    /// <summary>Reads a length prefix and returns the bytes it covers as [Start, End); the reader moves past them.</summary>
    public (int Start, int End) ReadLengthDelimited()
    {
        int at = _position;
        ulong length = ReadVarint();
        if (length > (ulong)(end - _position))
            throw Error(at, $"a length of {length} bytes runs past the end of its message ({end - _position} bytes left)");
        int contentStart = _position;
        _position += (int)length;
        return (contentStart, _position);
    }

    /// <summary>A reader over the nested message that follows (length-delimited).</summary>
    public ProtoReader ReadMessage()
    {
        (int s, int e) = ReadLengthDelimited();
        return new ProtoReader(data, s, e);
    }

    /// <summary>Skips the value of a field of <paramref name="wireType"/>.</summary>
    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case Varint: ReadVarint(); break;
            case LengthDelimited: ReadLengthDelimited(); break;
            default:
                int size = wireType == Fixed64 ? 8 : 4;
                if (end - _position < size) throw Error(_position, $"a {size * 8}-bit value runs past the end of its message");
                _position += size;
                break;
        }
    }

    /// <summary>Reads a repeated integer field: one varint, or a packed run of them. Calls
    /// <paramref name="add"/> per value.</summary>
    public void ReadRepeatedVarint<TAdd>(int wireType, ref TAdd add) where TAdd : struct, IVarintSink, allows ref struct
    {
        if (wireType == Varint)
        {
            add.Add(ReadVarint());
            return;
        }
        if (wireType != LengthDelimited)
        {
            Skip(wireType);
            return;
        }
        (int s, int e) = ReadLengthDelimited();
        var packed = new ProtoReader(data, s, e);
        while (packed._position < e) add.Add(packed.ReadVarint());
    }

    public static ProfileFormatException Error(long offset, string reason) =>
        ProfileFormatException.AtOffset(offset, $"not a valid pprof profile: {reason}");
}

/// <summary>Receives the values of a repeated integer field.</summary>
internal interface IVarintSink
{
    void Add(ulong value);
}
