using System.IO.Compression;
using Google.Protobuf;
using ProfileArena.Formats;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Formats;

/// <summary>Every file of testdata/pprof, plus profiles written here for inlining and the error paths.</summary>
public class PprofTests
{
    public static TheoryData<string, long, string> PprofFiles() => new()
    {
        // file, samples (MANIFEST), first sample type
        { "pprof/google-pprof/cppbench.cpu_no_samples_type", 52, "cpu/nanoseconds" },
        { "pprof/google-pprof/go.nomappings.crash", 2, "alloc_objects/count" },
        { "pprof/google-pprof/large.cpu", 20430, "samples/count" },
        { "pprof/google-pprof/sample.cpu", 76, "samples/count" },
        { "pprof/speedscope/simple.prof", 9, "samples/count" },
        { "pprof/go-torch/pprof.1.pb.gz", 242, "samples/count" },
    };

    [Fact]
    public void EveryPprofFileIsListed() =>
        Assert.Equal(PprofFiles().Select(row => row.Data.Item1).Order(StringComparer.Ordinal), SharedData.Files("pprof").Select(SharedData.Relative));

    private static PprofImportResult Import(TreeStore store, byte[] bytes, out ProfileTree tree, PprofImportOptions? options = null)
    {
        tree = store.CreateTree();
        return PprofFormat.Import(new MemoryStream(bytes), tree, options);
    }

    [Theory]
    [MemberData(nameof(PprofFiles))]
    public void Imports(string relative, long samples, string firstType)
    {
        byte[] bytes = File.ReadAllBytes(Path.Combine(SharedData.TestData, relative));
        using var store = new TreeStore();
        PprofImportResult result = Import(store, bytes, out ProfileTree tree);
        Assert.True(result.Gzipped); // all of them, whatever the name says
        Assert.Equal(samples, result.Samples);
        Assert.Equal(firstType, result.SampleType);
        Assert.Equal(result.Total, tree.Total);
        Assert.True(tree.NodeCount > 1);

        // Gzip is detected by magic bytes: the raw protobuf gives the same tree.
        using var raw = new MemoryStream();
        using (var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress)) gzip.CopyTo(raw);
        PprofImportResult rawResult = Import(store, raw.ToArray(), out ProfileTree rawTree);
        Assert.False(rawResult.Gzipped);
        Assert.Equal(TreeSnapshot.Of(tree), TreeSnapshot.Of(rawTree));

        // Every other sample type can be chosen by name.
        foreach (string type in result.SampleTypes)
        {
            PprofImportResult other = Import(store, bytes, out ProfileTree otherTree, new PprofImportOptions { SampleType = type.Split('/')[0] });
            Assert.Equal(type, other.SampleType);
            Assert.Equal(TreeSnapshot.Of(tree).Select(n => n.Stack), TreeSnapshot.Of(otherTree).Select(n => n.Stack));
        }
    }

    [Fact]
    public void StacksAreRootFirst()
    {
        using var store = new TreeStore();
        Import(store, File.ReadAllBytes(Path.Combine(SharedData.TestData, "pprof/go-torch/pprof.1.pb.gz")), out ProfileTree tree);
        var roots = TreeSnapshot.Of(tree).Where(n => !n.Stack.Contains(';')).Select(n => n.Stack).ToList();
        Assert.Contains("runtime.goexit", roots); // Go stacks start at goexit (the root), never at a leaf
    }

    [Fact]
    public void UnsymbolizedProfilesFallBackToHexAddresses()
    {
        using var store = new TreeStore();
        PprofImportResult result = Import(store, File.ReadAllBytes(Path.Combine(SharedData.TestData, "pprof/google-pprof/cppbench.cpu_no_samples_type")), out ProfileTree tree);
        Assert.True(result.UnsymbolizedFrames > 0);
        Assert.All(TreeSnapshot.Of(tree), n => Assert.Matches("^0x[0-9a-f]+$", n.Stack.Split(';')[^1]));
        Assert.True(tree.Total > uint.MaxValue); // values above 2^31 (and 2^32) survive
    }

    [Fact]
    public void SampleTypeByName()
    {
        using var store = new TreeStore();
        byte[] bytes = File.ReadAllBytes(Path.Combine(SharedData.TestData, "pprof/google-pprof/sample.cpu"));
        PprofImportResult samples = Import(store, bytes, out ProfileTree s);
        PprofImportResult cpu = Import(store, bytes, out ProfileTree c, new PprofImportOptions { SampleType = "cpu" });
        Assert.Equal("cpu/nanoseconds", cpu.SampleType);
        Assert.True(c.Total > s.Total);
        var e = Assert.Throws<ProfileFormatException>(() => Import(store, bytes, out _, new PprofImportOptions { SampleType = "wall" }));
        Assert.Contains("samples/count, cpu/nanoseconds", e.Message);
    }

    // --- profiles written here with Google.Protobuf's CodedOutputStream ---

    private static byte[] Profile(Action<CodedOutputStream, Func<string, long>> body)
    {
        var strings = new List<string> { "" };
        long Str(string s)
        {
            int i = strings.IndexOf(s);
            if (i < 0) { strings.Add(s); i = strings.Count - 1; }
            return i;
        }
        var bodyBytes = new MemoryStream();
        var output = new CodedOutputStream(bodyBytes, leaveOpen: true);
        body(output, Str);
        foreach (string s in strings) { output.WriteTag(6, WireFormat.WireType.LengthDelimited); output.WriteString(s); }
        output.Flush();
        return bodyBytes.ToArray();
    }

    private static void Message(CodedOutputStream output, int field, Action<CodedOutputStream> body)
    {
        var inner = new MemoryStream();
        var o = new CodedOutputStream(inner, leaveOpen: true);
        body(o);
        o.Flush();
        output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(inner.ToArray()));
    }

    private static void Varint(CodedOutputStream o, int field, ulong value) { o.WriteTag(field, WireFormat.WireType.Varint); o.WriteUInt64(value); }

    private static byte[] InlinedProfile(long value = 5, ulong missingFunction = 0) => Profile((o, str) =>
    {
        Message(o, 1, t => { Varint(t, 1, (ulong)str("samples")); Varint(t, 2, (ulong)str("count")); });
        // location 1 (leaf): "inner" inlined into "middle"; location 2: "main"; location 3: no line, an address.
        Message(o, 4, l =>
        {
            Varint(l, 1, 1);
            Message(l, 4, line => Varint(line, 1, 10));
            Message(l, 4, line => Varint(line, 1, 11));
        });
        Message(o, 4, l => { Varint(l, 1, 2); Message(l, 4, line => Varint(line, 1, 12 + missingFunction)); });
        Message(o, 4, l => { Varint(l, 1, 3); Varint(l, 3, 0x4005d0); });
        Message(o, 5, f => { Varint(f, 1, 10); Varint(f, 2, (ulong)str("inner;x")); });
        Message(o, 5, f => { Varint(f, 1, 11); Varint(f, 2, (ulong)str("middle")); });
        Message(o, 5, f => { Varint(f, 1, 12); Varint(f, 3, (ulong)str("main_system_name")); });
        // sample: locations leaf first, packed; one value.
        Message(o, 2, s =>
        {
            s.WriteTag(1, WireFormat.WireType.LengthDelimited);
            var packed = new MemoryStream();
            var p = new CodedOutputStream(packed, leaveOpen: true);
            p.WriteUInt64(1); p.WriteUInt64(2); p.WriteUInt64(3);
            p.Flush();
            s.WriteBytes(ByteString.CopyFrom(packed.ToArray()));
            Varint(s, 2, (ulong)value);
        });
        // a second sample, unpacked location ids, no location at all
        Message(o, 2, s => Varint(s, 2, 2));
    });

    [Fact]
    public void InlinedFramesExpandRootFirstAndNamesFallBack()
    {
        using var store = new TreeStore();
        PprofImportResult result = Import(store, InlinedProfile(), out ProfileTree tree);
        Assert.Equal(
            [new VisitedNode("0x4005d0", 0, 5), new VisitedNode("0x4005d0;main_system_name", 0, 5),
             new VisitedNode("0x4005d0;main_system_name;middle", 0, 5), new VisitedNode("0x4005d0;main_system_name;middle;inner:x", 5, 5),
             new VisitedNode("[no stack]", 2, 2)],
            TreeSnapshot.Of(tree));
        Assert.Equal(1, result.UnsymbolizedFrames);
    }

    [Fact]
    public void BadProfilesFailClearlyAndChangeNothing()
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        tree.Insert("kept", 1);
        void Fails(byte[] bytes, string message)
        {
            var e = Assert.Throws<ProfileFormatException>(() => PprofFormat.Import(new MemoryStream(bytes), tree));
            Assert.Contains(message, e.Message);
            Assert.Equal(0, e.LineNumber);
            Assert.Equal([new VisitedNode("kept", 1, 1)], TreeSnapshot.Of(tree));
        }
        Fails(InlinedProfile(value: -3), "negative");
        Fails(InlinedProfile(missingFunction: 50), "function 62");
        Fails("a;b 1\n"u8.ToArray(), "not a valid pprof profile");
        Fails([0x1F, 0x8B, 0x08, 0x00, 0x01, 0x02], "");
        byte[] truncated = File.ReadAllBytes(Path.Combine(SharedData.TestData, "pprof/google-pprof/sample.cpu"));
        Fails(truncated[..(truncated.Length / 2)], ""); // GZipStream ends early on truncation: the protobuf check catches it
    }
}
