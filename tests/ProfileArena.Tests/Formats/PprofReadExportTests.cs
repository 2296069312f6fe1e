using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using ProfileArena.Formats;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Formats;

/// <summary>PprofFormat.Read (every sample type, one decoder with Import) and PprofFormat.Export (round trips
/// through Import, Read and go tool pprof).</summary>
public class PprofReadExportTests
{
    /// <summary>A sink that keeps one tree per sample type (the server's use of Read), plus what Begin got.</summary>
    private sealed class TreePerType(TreeStore store) : IPprofSampleSink
    {
        public PprofProfileInfo? Info { get; private set; }
        public List<ProfileTree> Trees { get; } = [];
        public long Samples { get; private set; }

        public void Begin(PprofProfileInfo info)
        {
            Assert.Null(Info); // once
            Info = info;
            foreach (var _ in info.SampleTypes) Trees.Add(store.CreateTree());
        }

        public void Sample(ReadOnlySpan<byte> stack, ReadOnlySpan<long> values)
        {
            Assert.NotNull(Info);
            Assert.Equal(Trees.Count, values.Length);
            for (int i = 0; i < values.Length; i++)
            {
                Assert.True(values[i] >= 0);
                Trees[i].Insert(stack, (ulong)values[i]);
            }
            Samples++;
        }
    }

    [Theory]
    [MemberData(nameof(PprofTests.PprofFiles), MemberType = typeof(PprofTests))]
    public void ReadDeliversEveryTypeAsImportReadsIt(string relative, long samples, string firstType)
    {
        byte[] bytes = File.ReadAllBytes(Path.Combine(SharedData.TestData, relative));
        using var store = new TreeStore();
        var sink = new TreePerType(store);
        PprofReadResult read = PprofFormat.Read(new MemoryStream(bytes), sink);
        Assert.Same(read.Info, sink.Info);
        Assert.Equal(samples, read.Samples);
        Assert.Equal(samples, sink.Samples);
        Assert.Equal(firstType, read.Info.SampleTypes[0].ToString());
        for (int i = 0; i < read.Info.SampleTypes.Count; i++)
        {
            ProfileTree imported = store.CreateTree();
            // Import by type name takes the first type of that name: compare only where the name is unique.
            string type = read.Info.SampleTypes[i].Type;
            if (read.Info.SampleTypes.Count(t => t.Type == type) > 1) continue;
            PprofImportResult result = PprofFormat.Import(new MemoryStream(bytes), imported, new PprofImportOptions { SampleType = type });
            Assert.Equal(read.Info.SampleTypes.Select(t => t.ToString()), result.SampleTypes);
            Assert.Equal(result.UnsymbolizedFrames, read.UnsymbolizedFrames);
            Assert.Equal(TreeSnapshot.Of(imported), TreeSnapshot.Of(sink.Trees[i]));
        }
    }

    // Frame names for random trees: printable ASCII with the characters pprof tools care about, multi-byte
    // UTF-8, raw non-UTF-8 bytes. Not empty (pprof names an empty function by its location) and never ';'.
    private static readonly byte[][] Pieces =
        [.. new[] { "a", "b", "main", "runtime.goexit", " ", "1", ".", "#", "/", "(*T).m", "é", "日本", "x y", "[k]", "<T>", ":", "\t" }.Select(Encoding.UTF8.GetBytes), [0xFF], [0x80, 0x80]];

    private static ProfileTree RandomTree(TreeStore store, ref SplitMix64 rng, byte[][] pieces)
    {
        ProfileTree tree = store.CreateTree();
        int inserts = 1 + (int)rng.NextBelow(40);
        for (int i = 0; i < inserts; i++)
        {
            var key = new List<byte>();
            int depth = 1 + (int)rng.NextBelow(8);
            for (int d = 0; d < depth; d++)
            {
                if (d > 0) key.Add((byte)';');
                int parts = 1 + (int)rng.NextBelow(3);
                for (int p = 0; p < parts; p++) key.AddRange(pieces[rng.NextBelow((ulong)pieces.Length)]);
            }
            ulong value = rng.NextBelow(5) == 0 ? rng.NextUInt64() >> 24 : 1 + rng.NextBelow(100);
            tree.Insert(key.ToArray(), value);
        }
        return tree;
    }

    [Fact]
    public void ExportThenImportOrReadIsTheIdentity()
    {
        var rng = new SplitMix64(20261129);
        for (int round = 0; round < 200; round++)
        {
            using var store = new TreeStore();
            ProfileTree tree = RandomTree(store, ref rng, Pieces);
            var options = new PprofExportOptions
            {
                SampleType = round % 2 == 0 ? "cpu" : "samples",
                SampleUnit = round % 2 == 0 ? "nanoseconds" : "count",
                PeriodType = round % 3 == 0 ? null : new PprofValueType("cpu", "nanoseconds"),
                Period = round % 3 == 0 ? 0 : 10_000_000,
                TimeNanos = (long)rng.NextBelow(1UL << 62),
                DurationNanos = round % 4 == 0 ? 0 : (long)rng.NextBelow(1UL << 40),
            };
            var output = new MemoryStream();
            long written = PprofFormat.Export(tree, output, options);
            Assert.Equal(TreeSnapshot.Of(tree).Count(n => n.Self > 0), written); // values here stay below 2^63

            ProfileTree imported = store.CreateTree();
            PprofImportResult result = PprofFormat.Import(new MemoryStream(output.ToArray()), imported);
            Assert.True(result.Gzipped);
            Assert.Equal(0, result.UnsymbolizedFrames);
            Assert.Equal($"{options.SampleType}/{options.SampleUnit}", result.SampleType);
            var expected = TreeSnapshot.Of(tree);
            var actual = TreeSnapshot.Of(imported);
            for (int i = 0; i < Math.Min(expected.Count, actual.Count); i++)
                if (expected[i] != actual[i]) Assert.Fail($"round {round}, node {i}: expected {expected[i]}, got {actual[i]}");
            Assert.Equal(expected.Count, actual.Count);

            var sink = new TreePerType(store);
            PprofReadResult read = PprofFormat.Read(new MemoryStream(output.ToArray()), sink);
            Assert.Equal(expected, TreeSnapshot.Of(sink.Trees.Single()));
            Assert.Equal(written, read.Samples);
            Assert.Equal(new PprofValueType(options.SampleType, options.SampleUnit), read.Info.SampleTypes.Single());
            Assert.Equal(options.PeriodType ?? new PprofValueType("", ""), read.Info.PeriodType);
            Assert.Equal(options.Period, read.Info.Period);
            Assert.Equal(options.TimeNanos, read.Info.TimeNanos);
            Assert.Equal(options.DurationNanos, read.Info.DurationNanos);
        }
    }

    [Fact]
    public void StringTableAndFunctionsAreDeduplicated()
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        tree.Insert("main;f;g;f", 3);
        tree.Insert("main;g;samples", 2); // a frame named like the sample type shares its string
        var output = new MemoryStream();
        PprofFormat.Export(tree, output);
        var sink = new RawCounts();
        PprofFormat.Read(new MemoryStream(output.ToArray()), sink);
        using var raw = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(new MemoryStream(output.ToArray()), System.IO.Compression.CompressionMode.Decompress)) gzip.CopyTo(raw);
        // Each distinct string appears once in the raw message: "", samples, count, main, f, g.
        string text = Encoding.Latin1.GetString(raw.ToArray());
        foreach (string s in new[] { "samples", "count", "main" })
            Assert.Single(Regex.Matches(text, Regex.Escape(s)));
        Assert.Equal(2, sink.Samples);
    }

    private sealed class RawCounts : IPprofSampleSink
    {
        public long Samples;
        public void Begin(PprofProfileInfo info) { }
        public void Sample(ReadOnlySpan<byte> stack, ReadOnlySpan<long> values) => Samples++;
    }

    [Fact]
    public void SelfAbove2To63IsSplitAndAddsBackUp()
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        tree.Insert("a;b", ulong.MaxValue - 5);
        tree.Insert("a", 5);
        var output = new MemoryStream();
        Assert.Equal(3, PprofFormat.Export(tree, output)); // 2^64 − 6 = (2^63 − 1) + (2^63 − 5): two samples, plus "a"
        ProfileTree again = store.CreateTree();
        PprofFormat.Import(new MemoryStream(output.ToArray()), again);
        Assert.Equal(TreeSnapshot.Of(tree), TreeSnapshot.Of(again));
    }

    [Fact]
    public void EmptyTreeExportsAValidProfileWithNoSample()
    {
        using var store = new TreeStore();
        var output = new MemoryStream();
        Assert.Equal(0, PprofFormat.Export(store.CreateTree(), output));
        var sink = new RawCounts();
        PprofReadResult read = PprofFormat.Read(new MemoryStream(output.ToArray()), sink);
        Assert.Equal(0, read.Samples);
        Assert.Equal("samples/count", read.Info.SampleTypes.Single().ToString());
    }

    // --- go tool pprof, the reference reader ---

    private static string? GoTool()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            if (File.Exists(Path.Combine(dir, "go"))) return Path.Combine(dir, "go");
        return null;
    }

    private static string Pprof(string go, string args, string file)
    {
        var start = new ProcessStartInfo(go) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args.Split(' ')) start.ArgumentList.Add(a);
        start.ArgumentList.Add(file);
        start.Environment["GOCACHE"] = Path.Combine(Path.GetTempPath(), "profilearena-gocache");
        start.Environment["PPROF_TMPDIR"] = Path.GetTempPath();
        using var process = Process.Start(start)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(120_000), "go tool pprof did not finish in 120 s");
        Assert.True(process.ExitCode == 0, $"go tool pprof {args} exited {process.ExitCode}: {stderr.Result}");
        return stdout;
    }

    private static readonly Regex SampleLine = new(@"^\s*(\d+): ([\d ]+?)\s*$", RegexOptions.Compiled);
    private static readonly Regex LocationLine = new(@"^\s*(\d+): 0x[0-9a-f]+ M=\d+ (.*) :\d+ s=\d+$", RegexOptions.Compiled);

    /// <summary>The tree go tool pprof -raw sees: its samples (values, then location ids leaf first) and its
    /// locations (id: address M=mapping name :line s=start), rebuilt root first.</summary>
    private static List<VisitedNode> TreeFromRaw(TreeStore store, string raw)
    {
        var locations = new Dictionary<string, string>();
        var samples = new List<(ulong Value, string[] Ids)>();
        bool inSamples = false, inLocations = false;
        foreach (string line in raw.Split('\n'))
        {
            if (line.StartsWith("Samples:", StringComparison.Ordinal)) { inSamples = true; continue; }
            if (line.StartsWith("Locations", StringComparison.Ordinal)) { inSamples = false; inLocations = true; continue; }
            if (line.StartsWith("Mappings", StringComparison.Ordinal)) { inLocations = false; continue; }
            Match m;
            if (inSamples && (m = SampleLine.Match(line)).Success)
                samples.Add((ulong.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), m.Groups[2].Value.Split(' ')));
            else if (inLocations && (m = LocationLine.Match(line)).Success)
                locations[m.Groups[1].Value] = m.Groups[2].Value;
        }
        ProfileTree tree = store.CreateTree();
        foreach (var (value, ids) in samples)
        {
            string? missing = ids.FirstOrDefault(id => !locations.ContainsKey(id));
            if (missing is not null) Assert.Fail($"location {missing} of go tool pprof -raw's output was not parsed:\n{raw}");
            tree.Insert(string.Join(';', ids.Reverse().Select(id => locations[id])), value);
        }
        return TreeSnapshot.Of(tree);
    }

    [Fact]
    public void GoToolPprofReadsTheExportAsTheSameTree()
    {
        string? go = GoTool();
        if (go is null) Assert.Skip("go is not installed (Debian golang-go; .ci/run installs it): go tool pprof cannot be checked here");
        // Names this parser can split from -raw's lines: ASCII without spaces or control characters. -symbolize=none
        // keeps go from demangling them ("(*T).m", "<T>" would be rewritten as C++ names).
        byte[][] pieces = [.. new[] { "a", "b", "main", "runtime.goexit", ".", "#", "/", "(*T).m", "[k]", "<T>", ":", "x_y", "9" }.Select(Encoding.UTF8.GetBytes)];
        var rng = new SplitMix64(4040);
        string file = Path.Combine(Path.GetTempPath(), $"profilearena-export-{Environment.ProcessId}.pb.gz");
        try
        {
            for (int round = 0; round < 6; round++)
            {
                using var store = new TreeStore();
                ProfileTree tree = RandomTree(store, ref rng, pieces);
                using (var f = File.Create(file)) PprofFormat.Export(tree, f, new PprofExportOptions { PeriodType = new("cpu", "nanoseconds"), Period = 100 });
                string raw = Pprof(go, "tool pprof -symbolize=none -raw", file);
                Assert.Contains("PeriodType: cpu nanoseconds", raw);
                Assert.Contains("Period: 100", raw);
                Assert.Equal(TreeSnapshot.Of(tree), TreeFromRaw(store, raw));
                string top = Pprof(go, "tool pprof -symbolize=none -top", file);
                Assert.Contains($"of {tree.Total} total", top);
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void ReadAgreesWithGoToolPprofOnTheProfileFields()
    {
        string? go = GoTool();
        if (go is null) Assert.Skip("go is not installed (Debian golang-go; .ci/run installs it): go tool pprof cannot be checked here");
        foreach (string path in SharedData.Files("pprof"))
        {
            string raw = Pprof(go, "tool pprof -symbolize=none -raw", path);
            var sink = new RawCounts();
            PprofReadResult read = PprofFormat.Read(File.OpenRead(path), sink);
            Assert.Contains($"PeriodType: {read.Info.PeriodType.Type} {read.Info.PeriodType.Unit}\n", raw);
            Assert.Contains($"Period: {read.Info.Period}\n", raw);
            // -raw's header line lists the sample types as "type/unit type/unit ...".
            Assert.Contains(string.Join(' ', read.Info.SampleTypes.Select(t => t.ToString())), raw);
        }
    }
}
