namespace ProfileArena.Server.Buffers;

/// <summary>
/// A write-only <see cref="Stream"/> appending to a <see cref="PooledBuffer"/>: the exporters write to streams, and
/// a response built in a <see cref="MemoryStream"/> (a day's timeline and a thousand nodes of flamebearer JSON pass
/// 85 KB) grew through fresh arrays on the Large Object Heap at every query, each allocation there bringing the next
/// background gen2 collection closer. The buffer stays its creator's: disposing the stream does not dispose it.
/// </summary>
internal sealed class PooledBufferStream(PooledBuffer buffer) : Stream
{
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => buffer.Length;

    public override long Position
    {
        get => buffer.Length;
        set => throw new NotSupportedException("a pooled buffer stream only appends");
    }

    public override void Write(byte[] bytes, int offset, int count) => buffer.Write(bytes.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> bytes) => buffer.Write(bytes);

    public override void WriteByte(byte value) => buffer.Write([value]);

    public override void Flush()
    {
    }

    public override int Read(byte[] bytes, int offset, int count) => throw new NotSupportedException("a pooled buffer stream only appends");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("a pooled buffer stream only appends");

    public override void SetLength(long value) => throw new NotSupportedException("a pooled buffer stream only appends");
}
