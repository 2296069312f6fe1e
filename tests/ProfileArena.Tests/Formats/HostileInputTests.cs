using System.IO.Compression;
using System.Text;
using ProfileArena.Formats;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Formats;

/// <summary>Issue 14, formats half: malformed protobuf, unbounded stacks, gzip bombs and quadratic visitors.
/// Each bad input must end as a ProfileFormatException that says where, with the target unchanged.</summary>
public class HostileInputTests
{
    private static ProfileFormatException Fails(byte[] bytes, PprofImportOptions? options = null)
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        tree.Insert("kept", 1);
        var e = Assert.Throws<ProfileFormatException>(() => PprofFormat.Import(new MemoryStream(bytes), tree, options));
        Assert.Equal([new VisitedNode("kept", 1, 1)], TreeSnapshot.Of(tree));
        // Read, the multi-type path, refuses it the same way.
        var e2 = Assert.Throws<ProfileFormatException>(() => PprofFormat.Read(new MemoryStream(bytes), new CountingSink(), options));
        Assert.Equal(e.ByteOffset, e2.ByteOffset);
        return e;
    }

    private sealed class CountingSink : IPprofSampleSink
    {
        public long Samples, Frames;
        public void Begin(PprofProfileInfo info) { }
        public void Sample(ReadOnlySpan<byte> stack, ReadOnlySpan<long> values)
        {
            Samples++;
            Frames += stack.Count((byte)';') + 1;
        }
    }

    // --- item 2: a Line submessage longer than its Location, and the class around it ---

    [Fact]
    public void TwelveByteProfileWithAnOverlongLineIsAFormatErrorAtItsOffset()
    {
        byte[] bytes = [0x0A, 0x04, 0x08, 0x01, 0x10, 0x02, 0x22, 0x04, 0x22, 0x05, 0x08, 0x01];
        ProfileFormatException e = Fails(bytes);
        Assert.Equal(9, e.ByteOffset); // the Line's length byte: 5 bytes announced, 2 left in the Location
        Assert.StartsWith("byte offset 9: ", e.Message);
        Assert.Contains("runs past the end of its message", e.Message);
    }

    /// <summary>Every prefix and every single-byte change of a small real profile: success or a
    /// ProfileFormatException with an offset inside the input, never another exception.</summary>
    [Fact]
    public void EveryTruncationAndByteChangeOfASmallProfileFailsCleanly()
    {
        byte[] raw = Gunzip(File.ReadAllBytes(Path.Combine(SharedData.TestData, "pprof/google-pprof/go.nomappings.crash")));
        int failures = 0;
        void Check(byte[] input)
        {
            using var store = new TreeStore();
            try
            {
                PprofFormat.Import(new MemoryStream(input), store.CreateTree());
            }
            catch (ProfileFormatException e)
            {
                failures++;
                Assert.InRange(e.ByteOffset, 0, input.Length);
            }
        }
        for (int n = 0; n < raw.Length; n++) Check(raw[..n]);
        foreach (byte b in new byte[] { 0x00, 0x01, 0x7F, 0x80, 0xFF })
            for (int i = 0; i < raw.Length; i++)
            {
                byte[] changed = (byte[])raw.Clone();
                changed[i] = b;
                Check(changed);
            }
        Assert.True(failures > raw.Length); // nearly every prefix is bad
    }

    internal static byte[] Gunzip(byte[] bytes)
    {
        if (bytes.Length < 2 || bytes[0] != 0x1F || bytes[1] != 0x8B) return bytes;
        using var raw = new MemoryStream();
        using (var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress)) gzip.CopyTo(raw);
        return raw.ToArray();
    }

    [Fact]
    public void ASinkErrorGetsTheSamplesOffset()
    {
        byte[] bytes = new PprofBuilder().SampleType("samples", "count").Sample([], 1).Sample([], -4).Build();
        using var store = new TreeStore();
        var e = Assert.Throws<ProfileFormatException>(() => PprofFormat.Import(new MemoryStream(bytes), store.CreateTree()));
        Assert.Contains("sample 2 has a negative samples/count value -4", e.Reason);
        Assert.True(e.ByteOffset > 0);
        // Read hands values over as they are (diff profiles are negative): the sink decides.
        var sink = new CountingSink();
        PprofFormat.Read(new MemoryStream(bytes), sink);
        Assert.Equal(2, sink.Samples);
    }

    // --- item 4: stack size bounded in bytes and frames, checked before allocation ---

    /// <summary>The input: one 16 MiB function name referenced 130 times made a key past 2 GiB
    /// (ArrayPool.Rent of a negative size) after 18.8 GB of memory. Now it fails at MaxStackBytes, and the
    /// import allocates a small multiple of the input, not of the key it would have built.</summary>
    [Fact]
    public void AHugeNameReferencedManyTimesStopsAtMaxStackBytes()
    {
        var b = new PprofBuilder().SampleType("samples", "count");
        long name = b.Str(Enumerable.Repeat((byte)'x', 16 << 20).ToArray());
        b.Function(1, name).Location(1, 1);
        byte[] bytes = b.Sample(Enumerable.Repeat(1UL, 130).ToList(), 1).Build();

        long before = GC.GetAllocatedBytesForCurrentThread();
        ProfileFormatException e = Fails(bytes);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("PprofImportOptions.MaxStackBytes", e.Reason);
        Assert.True(allocated < 8L * bytes.Length, $"{allocated:N0} bytes allocated for a {bytes.Length:N0}-byte input (two imports)");

        // Raised past the name, the same input still stops at the limit, wherever it is.
        e = Fails(bytes, new PprofImportOptions { MaxStackBytes = 100 << 20 });
        Assert.Contains("longer than 104857600 bytes", e.Reason);
    }

    [Theory]
    [InlineData(10, 10, true)]
    [InlineData(10, 11, false)]
    public void MaxStackFramesIsExact(int max, int depth, bool accepted)
    {
        // Each location is a frame of its own; depth locations in one sample.
        var b = new PprofBuilder().SampleType("samples", "count");
        for (ulong i = 1; i <= (ulong)depth; i++) b.Function(i, b.Str($"f{i}")).Location(i, i);
        byte[] bytes = b.Sample(Enumerable.Range(1, depth).Select(i => (ulong)i).ToList(), 3).Build();
        var options = new PprofImportOptions { MaxStackFrames = max };
        if (!accepted)
        {
            Assert.Contains("more than 10 frames (PprofImportOptions.MaxStackFrames)", Fails(bytes, options).Reason);
            return;
        }
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        PprofFormat.Import(new MemoryStream(bytes), tree, options);
        Assert.Equal(depth + 1, tree.NodeCount);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void MaxStackBytesIsExact(int over)
    {
        // "aaaa;bbbb;cccc" is 14 bytes.
        var b = new PprofBuilder().SampleType("samples", "count");
        b.Function(1, b.Str("cccc")).Function(2, b.Str("bbbb")).Function(3, b.Str("aaaa")).Location(1, 1).Location(2, 2).Location(3, 3);
        byte[] bytes = b.Sample([1, 2, 3], 1).Build();
        var options = new PprofImportOptions { MaxStackBytes = 16 };
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        if (over == 0)
        {
            PprofFormat.Import(new MemoryStream(bytes), tree, options);
            Assert.Equal([new VisitedNode("aaaa", 0, 1), new VisitedNode("aaaa;bbbb", 0, 1), new VisitedNode("aaaa;bbbb;cccc", 1, 1)], TreeSnapshot.Of(tree));
            return;
        }
        b = new PprofBuilder().SampleType("samples", "count");
        b.Function(1, b.Str("ccccccc")).Function(2, b.Str("bbbb")).Function(3, b.Str("aaaa")).Location(1, 1).Location(2, 2).Location(3, 3);
        Assert.Contains("longer than 16 bytes", Fails(b.Sample([1, 2, 3], 1).Build(), options).Reason); // 17 bytes
    }

    /// <summary>The "10 M locations deep" sample: refused while its ids are read, before any key.</summary>
    [Fact]
    public void TenMillionLocationsDeepIsRefusedAtMaxStackFrames()
    {
        var b = new PprofBuilder().SampleType("samples", "count");
        b.Function(1, b.Str("f")).Location(1, 1);
        byte[] bytes = b.Sample(new ulong[10_000_000].Select(_ => 1UL).ToArray(), 1).Build();
        Assert.Contains("more than 65536 frames", Fails(bytes).Reason);
    }

    /// <summary>A location of 1,000 inlined lines named 60 times per sample expands a few bytes into 60,000
    /// frames: the total over the profile is bounded by MaxFramesPerInputByte × input size.</summary>
    [Fact]
    public void ExpansionOverTheWholeProfileIsBoundedByItsSize()
    {
        var b = new PprofBuilder().SampleType("samples", "count");
        b.Function(1, b.Str("g"));
        b.Location(1, Enumerable.Repeat(1UL, 1000).ToArray());
        for (int i = 0; i < 200; i++) b.Sample(Enumerable.Repeat(1UL, 60).ToList(), 1);
        byte[] bytes = b.Build();
        Assert.Contains("PprofImportOptions.MaxFramesPerInputByte", Fails(bytes).Reason);
        // The same budget accepts the profile when allowed enough frames per byte: the limit is what stopped it.
        var sink = new CountingSink();
        PprofFormat.Read(new MemoryStream(bytes), sink, new PprofImportOptions { MaxFramesPerInputByte = 100_000 });
        Assert.Equal(200L * 60_000, sink.Frames);
    }

    [Fact]
    public void RealProfilesStayWellInsideTheDefaultLimits()
    {
        foreach (string path in SharedData.Files("pprof"))
        {
            byte[] raw = Gunzip(File.ReadAllBytes(path));
            var sink = new CountingSink();
            PprofFormat.Read(new MemoryStream(raw), sink);
            // frames per input byte, to compare with the default 64
            Assert.True(sink.Frames <= 4L * raw.Length, $"{SharedData.Relative(path)}: {sink.Frames} frames from {raw.Length} bytes");
        }
    }

    // --- item 11: a gzip bomb costs at most the limit ---

    private static byte[] GzipBomb(int decompressed)
    {
        var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            byte[] zeros = new byte[1 << 20];
            for (int written = 0; written < decompressed; written += zeros.Length) gzip.Write(zeros);
        }
        return output.ToArray();
    }

    [Fact]
    public void AGzipBombIsRefusedWithinTheLimitsMemory()
    {
        byte[] bomb = GzipBomb(256 << 20);
        Assert.True(bomb.Length < 1 << 20);
        const int limit = 4 << 20;
        long before = GC.GetAllocatedBytesForCurrentThread();
        ProfileFormatException e = Fails(bomb, new PprofImportOptions { MaxBytes = limit });
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains($"larger than {limit} bytes decompressed (PprofImportOptions.MaxBytes)", e.Reason);
        Assert.True(allocated < 2 * (2L * limit + (1 << 20)), $"{allocated:N0} bytes allocated for two imports with a {limit:N0}-byte limit");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TheSizeLimitIsExact(bool gzipped)
    {
        byte[] raw = Gunzip(File.ReadAllBytes(Path.Combine(SharedData.TestData, "pprof/google-pprof/sample.cpu")));
        byte[] input = raw;
        if (gzipped)
        {
            var output = new MemoryStream();
            using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)) gzip.Write(raw);
            input = output.ToArray();
        }
        using var store = new TreeStore();
        PprofFormat.Import(new MemoryStream(input), store.CreateTree(), new PprofImportOptions { MaxBytes = raw.Length });
        Assert.Contains($"larger than {raw.Length - 1} bytes", Fails(input, new PprofImportOptions { MaxBytes = raw.Length - 1 }).Reason);
    }

    // --- item 8: linear work on any shape ---

    private static List<byte[]> Shape(string kind, int n, ref SplitMix64 rng)
    {
        var keys = new List<byte[]>();
        switch (kind)
        {
            case "chain":
                keys.Add(Encoding.ASCII.GetBytes(string.Join(';', Enumerable.Repeat("f", n))));
                break;
            case "wide":
                for (int i = 0; i < n; i++) keys.Add(Encoding.ASCII.GetBytes($"root;w{i}"));
                break;
            default: // random: n frames spread over keys sharing random prefixes
                var frames = 0;
                while (frames < n)
                {
                    int depth = 1 + (int)rng.NextBelow(50);
                    var names = new string[depth];
                    for (int d = 0; d < depth; d++) names[d] = $"r{rng.NextBelow(4)}";
                    keys.Add(Encoding.ASCII.GetBytes(string.Join(';', names)));
                    frames += depth;
                }
                break;
        }
        return keys;
    }

    /// <summary>The tracker agrees with counting ';' and takes at most two steps per node: the work at 10n is
    /// at most 10 times the work at n (plus the constant), on a chain, a wide tree and random trees.</summary>
    [Theory]
    [InlineData("chain")]
    [InlineData("wide")]
    [InlineData("random")]
    public void DepthTrackingIsLinearOnEveryShape(string kind)
    {
        var rng = new SplitMix64(14);
        long[] steps = new long[2];
        int[] sizes = [2_000, 20_000];
        for (int s = 0; s < 2; s++)
        {
            using var store = new TreeStore();
            ProfileTree tree = store.CreateTree();
            foreach (byte[] key in Shape(kind, sizes[s], ref rng)) tree.Insert(key, 1);
            var tracker = new StackDepthTracker();
            long nodes = 0;
            tree.Iterate((stack, _, _) =>
            {
                int depth = tracker.Next(stack);
                Assert.Equal(stack.Count((byte)';') + 1, depth);
                Assert.Equal(stack.LastIndexOf((byte)';') + 1, tracker.NameStart);
                nodes++;
            });
            Assert.True(tracker.Steps <= 2 * nodes, $"{tracker.Steps} steps for {nodes} nodes");
            steps[s] = tracker.Steps;
        }
        Assert.True(steps[1] <= 10 * steps[0] + 10, $"steps at n: {steps[0]}, at 10n: {steps[1]}");
    }

    /// <summary>The shape: one 1,000,000-frame stack. Every exporter handles it (each was quadratic,
    /// counting ';' over the whole path per node) and gets the depth right.</summary>
    [Fact]
    public void EveryExporterHandlesAMillionFrameStack()
    {
        const int depth = 1_000_000;
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        tree.Insert(Encoding.ASCII.GetBytes(string.Join(';', Enumerable.Range(0, depth).Select(i => i % 2 == 0 ? "f" : "g"))), 7);

        var json = new MemoryStream();
        FlamebearerFormat.Export(tree, json, new FlamebearerOptions { MaxNodes = 0 });
        using (var doc = System.Text.Json.JsonDocument.Parse(json.ToArray(), new System.Text.Json.JsonDocumentOptions { MaxDepth = 8 }))
            Assert.Equal(depth + 1, doc.RootElement.GetProperty("flamebearer").GetProperty("levels").GetArrayLength());

        var svg = new CountingStream();
        FlameGraphSvg.Write(tree, svg);
        Assert.True(svg.Length > 100L * depth); // one frame per level

        var folded = new MemoryStream();
        Assert.Equal(1, FoldedFormat.Export(tree, folded));
        Assert.Equal(2L * depth - 1 + " 7\n".Length, folded.Length);

        var pprof = new MemoryStream();
        Assert.Equal(1, PprofFormat.Export(tree, pprof));
        ProfileTree again = store.CreateTree();
        PprofFormat.Import(new MemoryStream(pprof.ToArray()), again, new PprofImportOptions { MaxStackFrames = depth });
        Assert.Equal(tree.NodeCount, again.NodeCount);
        Assert.Equal(tree.Total, again.Total);
    }

    private sealed class CountingStream : Stream
    {
        private long _length;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => _length += count;
        public override void Write(ReadOnlySpan<byte> buffer) => _length += buffer.Length;
    }
}
