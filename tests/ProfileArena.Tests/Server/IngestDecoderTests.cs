using System.IO.Compression;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.AspNetCore.Http;
using ProfileArena.Formats;
using ProfileArena.Server.Hosting;
using ProfileArena.Server.Http;
using ProfileArena.Server.Ingest;
using ProfileArena.Server.Storage;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Server;

/// <summary>Ingest bodies to stacks: folded, lines, pprof (raw, gzipped, multipart), against reference readings.</summary>
public class IngestDecoderTests
{
    private static readonly ServerOptions Limits = new();

    private static IngestParameters Params(string name = "app{env=test}", string? format = null) =>
        new(IngestName.Parse(name, Limits), 100, 110, SeriesMetadata.Default, format);

    private static Dictionary<string, ulong> Sums(StackBatch batch)
    {
        var sums = new Dictionary<string, ulong>(StringComparer.Ordinal);
        for (int i = 0; i < batch.Count; i++)
        {
            string key = Encoding.UTF8.GetString(batch.Stack(i));
            sums[key] = sums.GetValueOrDefault(key) + batch.Value(i);
        }
        return sums;
    }

    private static List<IngestProfile> Decode(string? contentType, byte[] body, IngestParameters? p = null, ServerOptions? limits = null) =>
        new IngestDecoder(limits ?? Limits).Decode("tenant-a", p ?? Params(), contentType, body);

    [Theory]
    [InlineData(null, null, "text/plain", IngestFormat.Folded)]
    [InlineData(null, "application/x-www-form-urlencoded", "foo;bar 1", IngestFormat.Folded)] // curl's default
    [InlineData("folded", null, "foo 1", IngestFormat.Folded)]
    [InlineData("whatever", null, "foo 1", IngestFormat.Folded)] // pyroscope: unknown formats are "groups"
    [InlineData("lines", null, "foo", IngestFormat.Lines)]
    [InlineData("pprof", "application/octet-stream", "x", IngestFormat.Pprof)]
    [InlineData(null, "multipart/form-data; boundary=x", "x", IngestFormat.Pprof)]
    [InlineData(null, "application/octet-stream", "\u001f\u008b", IngestFormat.Pprof)] // gzip magic
    public void FormatChoiceFollowsPyroscope(string? format, string? contentType, string head, IngestFormat expected) =>
        Assert.Equal(expected, IngestDecoder.ChooseFormat(format, contentType, Encoding.Latin1.GetBytes(head)));

    [Theory]
    [InlineData("trie", null)]
    [InlineData("tree", null)]
    [InlineData("jfr", null)]
    [InlineData("speedscope", null)]
    [InlineData(null, "binary/octet-stream+trie")]
    [InlineData(null, "binary/octet-stream+tree")]
    public void UnsupportedFormatsAre400(string? format, string? contentType)
    {
        var e = Assert.Throws<RequestException>(() => IngestDecoder.ChooseFormat(format, contentType, "x"u8));
        Assert.Equal(400, e.Status);
        Assert.Contains("not supported", e.Message);
    }

    [Fact]
    public void FoldedBodiesSumPerStackOverRandomInput()
    {
        var random = new Random(3);
        for (int round = 0; round < 50; round++)
        {
            var expected = new Dictionary<string, ulong>(StringComparer.Ordinal);
            var body = new StringBuilder();
            for (int i = random.Next(1, 200); i > 0; i--)
            {
                string stack = string.Join(";", Enumerable.Range(0, random.Next(1, 6)).Select(_ => "fn" + random.Next(8) + (random.Next(10) == 0 ? " x" : "")));
                ulong count = (ulong)random.Next(1, 1000);
                expected[stack] = expected.GetValueOrDefault(stack) + count;
                body.Append(stack).Append(' ').Append(count).Append(random.Next(4) == 0 ? "\r\n" : "\n");
            }
            IngestProfile profile = Assert.Single(Decode("application/x-www-form-urlencoded", Encoding.UTF8.GetBytes(body.ToString())));
            Assert.Equal(new SeriesKey("tenant-a", "app", [new Label("env", "test")]), profile.Series);
            Assert.Equal(expected.OrderBy(kv => kv.Key, StringComparer.Ordinal), Sums(profile.Stacks).OrderBy(kv => kv.Key, StringComparer.Ordinal));
            Assert.Equal((100L, 110L), (profile.FromSeconds, profile.UntilSeconds));
        }
    }

    [Fact]
    public void PyroscopesDocumentedCurlExample()
    {
        // README of pyroscope: printf "foo;bar 100\n foo;baz 200" | curl -X POST --data-binary @- '…/ingest?name=curl-test-app&…'
        IngestProfile p = Assert.Single(Decode("application/x-www-form-urlencoded", "foo;bar 100\n foo;baz 200"u8.ToArray(), Params("curl-test-app")));
        Assert.Equal("curl-test-app", p.Series.Name);
        Assert.Equal(new Dictionary<string, ulong> { ["foo;bar"] = 100, [" foo;baz"] = 200 }, Sums(p.Stacks));
    }

    [Fact]
    public void LinesCountOneEach()
    {
        IngestProfile p = Assert.Single(Decode(null, "a;b\na;b\r\n\na;c\na;b"u8.ToArray(), Params("app", "lines")));
        Assert.Equal(new Dictionary<string, ulong> { ["a;b"] = 3, ["a;c"] = 1 }, Sums(p.Stacks));
    }

    [Fact]
    public void EmptyBodiesStoreNothing()
    {
        Assert.Empty(Decode(null, []));
        Assert.Empty(Decode(null, "\n\n"u8.ToArray()));
        Assert.Empty(Decode(null, [], Params("app", "lines")));
    }

    [Theory]
    [InlineData("foo;bar\n", "line 1", "no count")]
    [InlineData("a 1\nfoo;bar -5\n", "line 2", "negative")]
    [InlineData("a 1\nb 2\nfoo 1.5\n", "line 3", "fractional")]
    [InlineData("foo 99999999999999999999999\n", "line 1", "above 2^64")]
    [InlineData("a 18446744073709551615\nb 1\n", "line 2", "2^64")]
    public void BadFoldedLinesAre400WithLineNumber(string body, string line, string reason)
    {
        var e = Assert.Throws<RequestException>(() => Decode(null, Encoding.UTF8.GetBytes(body)));
        Assert.Equal(400, e.Status);
        Assert.Contains(line, e.Message);
        Assert.Contains(reason, e.Message);
    }

    private static ulong ImportTotal(byte[] file, string sampleType)
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        PprofFormat.Import(new MemoryStream(file), tree, new PprofImportOptions { SampleType = sampleType });
        return tree.Total;
    }

    [Theory]
    [InlineData("pprof/go-torch/pprof.1.pb.gz", "app.cpu=samples")] // cpu/nanoseconds collides with samples → cpu and is left out, as pyroscope does
    [InlineData("pprof/google-pprof/large.cpu", "app.cpu=samples")]
    [InlineData("pprof/google-pprof/cppbench.cpu_no_samples_type", "app.cpu=cpu")]
    [InlineData("pprof/google-pprof/go.nomappings.crash", "app.alloc_objects=alloc_objects app.alloc_space=alloc_space app.inuse_objects=inuse_objects app.inuse_space=inuse_space")]
    public void PprofSampleTypesBecomeSeries(string file, string expectedSeries)
    {
        byte[] bytes = File.ReadAllBytes(Path.Combine(SharedData.TestData, file));
        var expected = expectedSeries.Split(' ').Select(s => s.Split('=')).ToDictionary(s => s[0], s => ImportTotal(bytes, s[1]));
        foreach (byte[] body in new[] { bytes, Gunzip(bytes) })
        {
            List<IngestProfile> profiles = Decode("application/octet-stream", body, Params("app{env=test}", "pprof"));
            Assert.Equal(expected.Keys.Order(), profiles.Select(p => p.Series.Name).Order());
            foreach (IngestProfile p in profiles)
            {
                Assert.Equal(expected[p.Series.Name], p.Stacks.Total);
                Assert.Equal([new Label("env", "test")], p.Series.Labels);
            }
        }
        // Gzipped pprof without format= is detected.
        Assert.Equal(expected.Count, Decode("application/octet-stream", bytes, Params("app{env=test}")).Count);
        var units = Decode(null, bytes, Params("app", "pprof")).ToDictionary(p => p.Series.Name, p => (p.Metadata.Units, p.Metadata.AggregationType));
        if (units.TryGetValue("app.inuse_space", out var inuse)) Assert.Equal(("bytes", "average"), inuse);
        if (units.TryGetValue("app.alloc_objects", out var alloc)) Assert.Equal(("objects", "sum"), alloc);
        if (file.Contains("go-torch")) Assert.Equal(("samples", "sum"), units["app.cpu"]);
    }

    private static byte[] Gunzip(byte[] gz)
    {
        using var output = new MemoryStream();
        using (var g = new GZipStream(new MemoryStream(gz), CompressionMode.Decompress)) g.CopyTo(output);
        return output.ToArray();
    }

    private static (string ContentType, byte[] Body) Form(params (string Name, byte[] Data)[] parts)
    {
        var form = new MultipartFormDataContent("----boundary-123");
        foreach (var (name, data) in parts)
        {
            var content = new ByteArrayContent(data);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            form.Add(content, name, name);
        }
        return (form.Headers.ContentType!.ToString(), form.ReadAsByteArrayAsync().Result);
    }

    [Fact]
    public void MultipartProfileWithSampleTypeConfig()
    {
        byte[] pprof = File.ReadAllBytes(Path.Combine(SharedData.TestData, "pprof/google-pprof/sample.cpu"));
        var (type, body) = Form(("profile", pprof));
        Assert.Equal(["app.cpu"], Decode(type, body, Params("app")).Select(p => p.Series.Name));

        // A sample_type_config replaces the table, as in pyroscope: both types named apart.
        byte[] config = """{"samples":{"display-name":"cpu_samples","units":"samples"},"cpu":{"display-name":"cpu_time","units":"nanoseconds","aggregation":"average"}}"""u8.ToArray();
        (type, body) = Form(("profile", pprof), ("sample_type_config", config));
        var profiles = Decode(type, body, Params("app")).ToDictionary(p => p.Series.Name);
        Assert.Equal(["app.cpu_samples", "app.cpu_time"], profiles.Keys.Order());
        Assert.Equal(("nanoseconds", "average"), (profiles["app.cpu_time"].Metadata.Units, profiles["app.cpu_time"].Metadata.AggregationType));
        Assert.Equal(ImportTotal(pprof, "cpu"), profiles["app.cpu_time"].Stacks.Total);

        // format=pprof with a multipart body reads the form too.
        Assert.Equal(2, Decode(type, body, Params("app", "pprof")).Count);
    }

    [Fact]
    public void BadMultipartIsA4xxThatSaysWhy()
    {
        byte[] pprof = File.ReadAllBytes(Path.Combine(SharedData.TestData, "pprof/google-pprof/sample.cpu"));
        var (type, body) = Form(("other", pprof));
        Assert.Equal(415, Assert.Throws<RequestException>(() => Decode(type, body)).Status);
        (type, body) = Form(("profile", pprof), ("prev_profile", pprof));
        var e = Assert.Throws<RequestException>(() => Decode(type, body));
        Assert.Equal(400, e.Status);
        Assert.Contains("prev_profile", e.Message);
        (type, body) = Form(("profile", pprof), ("sample_type_config", "{not json"u8.ToArray()));
        Assert.Contains("sample_type_config: invalid JSON", Assert.Throws<RequestException>(() => Decode(type, body)).Message);
        (type, body) = Form(("profile", "not a profile at all"u8.ToArray()));
        Assert.Contains("profile (pprof)", Assert.Throws<RequestException>(() => Decode(type, body)).Message);
        Assert.Equal(400, Assert.Throws<RequestException>(() => Decode(type, body[..(body.Length / 2)])).Status); // cut mid-part
        Assert.Equal(400, Assert.Throws<RequestException>(() => Decode("multipart/form-data", body)).Status); // no boundary
        Assert.Equal(400, Assert.Throws<RequestException>(() => Decode("multipart/form-data; boundary=zzz", body)).Status); // wrong boundary
    }

    [Fact]
    public void GzipBombIsRefusedWithinTheCap()
    {
        // 256 MiB of zeros gzip to about 256 KiB; the decoder stops at its 1 MiB cap.
        using var compressed = new MemoryStream();
        using (var gz = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            byte[] zeros = new byte[1 << 20];
            for (int i = 0; i < 256; i++) gz.Write(zeros);
        }
        var limits = new ServerOptions { MaxDecompressedBytes = 1 << 20 };
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<RequestException>(() => Decode("application/octet-stream", compressed.ToArray(), Params("app", "pprof"), limits));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(413, e.Status);
        Assert.Contains("decompresses to more than 1048576 bytes", e.Message);
        Assert.True(allocated < 32L << 20, $"allocated {allocated} bytes refusing a 256 MiB bomb");
    }

    [Fact]
    public void CorruptGzipIs400()
    {
        byte[] pprof = File.ReadAllBytes(Path.Combine(SharedData.TestData, "pprof/google-pprof/sample.cpu"));
        byte[] bad = pprof[..(pprof.Length / 2)];
        Assert.Equal(400, Assert.Throws<RequestException>(() => Decode(null, bad, Params("app", "pprof"))).Status);
        byte[] flipped = (byte[])pprof.Clone();
        flipped[40] ^= 0xFF;
        Assert.Equal(400, Assert.Throws<RequestException>(() => Decode(null, flipped, Params("app", "pprof"))).Status);
    }

    [Fact]
    public void TooManyNodesIs413()
    {
        var body = new StringBuilder();
        for (int i = 0; i < 200; i++) body.Append("f").Append(i).Append(" 1\n");
        var e = Assert.Throws<RequestException>(() => Decode(null, Encoding.UTF8.GetBytes(body.ToString()), limits: new ServerOptions { MaxNodesPerRequest = 100 }));
        Assert.Equal(413, e.Status);
        Assert.Contains("MaxNodesPerRequest", e.Message);
    }

    [Fact]
    public void QueryParametersDefaultsAndErrors()
    {
        var now = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);
        IngestParameters p = IngestParameters.Parse(new QueryCollection(new Dictionary<string, Microsoft.Extensions.Primitives.StringValues> { ["name"] = "app" }), Limits, now);
        Assert.Equal((1_700_000_000L, 1_700_000_000L), (p.From, p.Until));
        Assert.Equal(SeriesMetadata.Default, p.Metadata);
        Assert.Null(p.Format);
        foreach (var (key, value, expected) in new[]
        {
            ("sampleRate", "fast", "sampleRate"), ("sampleRate", "-1", "sampleRate"), ("until", "1000", "before from"),
            ("aggregationType", "max", "aggregationType"), ("spyName", "a b", "spyName"), ("units", new string('u', 100), "units"),
        })
        {
            var q = new Dictionary<string, Microsoft.Extensions.Primitives.StringValues> { ["name"] = "app", ["from"] = "2000", [key] = value };
            var e = Assert.Throws<RequestException>(() => IngestParameters.Parse(new QueryCollection(q), Limits, now));
            Assert.Contains(expected, e.Message);
        }
        var twice = new Dictionary<string, Microsoft.Extensions.Primitives.StringValues> { ["name"] = new(["a", "b"]) };
        Assert.Contains("given 2 times", Assert.Throws<RequestException>(() => IngestParameters.Parse(new QueryCollection(twice), Limits, now)).Message);
    }
}
