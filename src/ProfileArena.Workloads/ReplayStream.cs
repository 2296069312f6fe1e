namespace ProfileArena.Workloads;

/// <summary>
/// A byte array replayed <c>times</c> times as one forward-only stream: an input of any size for
/// import throughput and allocation measurements without holding it in memory.
/// </summary>
public sealed class ReplayStream(byte[] data, int times) : Stream
{
    private long _position;
    private long Total => (long)data.Length * times;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_position >= Total) return 0;
        int at = (int)(_position % data.Length);
        int n = Math.Min(buffer.Length, data.Length - at);
        data.AsSpan(at, n).CopyTo(buffer);
        _position += n;
        return n;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => Total;
    public override long Position { get => _position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
