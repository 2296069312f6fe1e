using ProfileArena.Formats;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Formats;

/// <summary>Managed allocation of a folded import does not grow with the number of lines.</summary>
public class ImportAllocationTests
{
    /// <summary>Replays a byte array <paramref name="times"/> times as one stream.</summary>
    internal sealed class ReplayStream(byte[] data, int times) : Stream
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

    private static long Allocated(byte[] data, int times)
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        long before = GC.GetAllocatedBytesForCurrentThread();
        FoldedFormat.Import(new ReplayStream(data, times), tree);
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void AllocationIsIndependentOfTheLineCount()
    {
        byte[] data = File.ReadAllBytes(Path.Combine(SharedData.TestData, "collapsed/inferno/flamegraph/unsorted-input/perf-vertx-stacks-01-collapsed-all-unsorted.txt"));
        Allocated(data, 2); // warm up
        long small = Allocated(data, 5), large = Allocated(data, 50); // 1,000 vs 10,000 lines
        Assert.True(large - small < 9_000, $"5 replays: {small} B, 50 replays: {large} B; 9,000 more lines cost {large - small} B");
    }
}
