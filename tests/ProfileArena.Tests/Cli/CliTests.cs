using System.Text;
using ProfileArena.Cli;
using ProfileArena.Cli.Commands;
using ProfileArena.Formats;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Cli;

/// <summary>The format commands, run in-process with their own writers.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("profilearena-cli-").FullName;
    private readonly StringWriter _out = new(), _err = new();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Data(string relative) => Path.Combine(SharedData.TestData, relative);

    private string Temp(string name) => Path.Combine(_dir, name);

    private int Run(string command, params string[] args) => CliApp.Run([command, .. args], _out, _err);

    [Fact]
    public void ConvertMergesSeveralInputsIntoFolded()
    {
        string output = Temp("merged.txt");
        int code = Run("convert",
            Data("collapsed/inferno/flamegraph/multiple-inputs/perf-vertx-stacks-01-collapsed-all-unsorted-1.txt"),
            Data("collapsed/inferno/flamegraph/multiple-inputs/perf-vertx-stacks-01-collapsed-all-unsorted-2.txt"), "-o", output);
        Assert.Equal(0, code);
        using var store = new TreeStore();
        ProfileTree merged = store.CreateTree(), whole = store.CreateTree();
        using (var f = File.OpenRead(output)) FoldedFormat.Import(f, merged);
        using (var f = File.OpenRead(Data("collapsed/inferno/flamegraph/unsorted-input/perf-vertx-stacks-01-collapsed-all-unsorted.txt"))) FoldedFormat.Import(f, whole);
        Assert.Equal(TreeSnapshot.Of(whole), TreeSnapshot.Of(merged));
    }

    [Fact]
    public void ConvertDetectsPprofByContentAndWritesJsonAndSvgByExtension()
    {
        // "large.cpu" says nothing about its format: the gzip magic does.
        Assert.Equal(0, Run("convert", Data("pprof/google-pprof/sample.cpu"), "-o", Temp("p.json"), "--sample-type", "cpu"));
        Assert.Contains("\"format\":\"single\"", File.ReadAllText(Temp("p.json")));
        Assert.Contains("cpu/nanoseconds", _err.ToString());
        Assert.Equal(0, Run("convert", Data("pprof/google-pprof/sample.cpu"), "-o", Temp("p.svg")));
        Assert.StartsWith("<?xml", File.ReadAllText(Temp("p.svg")));
        Assert.Equal(0, Run("convert", Data("pprof/google-pprof/sample.cpu"), "-o", Temp("p.folded")));
        Assert.Contains(";", File.ReadAllText(Temp("p.folded")));
    }

    [Fact]
    public void BadInputExitsWith1AndFileLine()
    {
        string bad = Data("bad/inferno/bad-lines_no-count-and-blank-lines.txt");
        Assert.Equal(1, Run("convert", bad, "-o", Temp("x.txt")));
        Assert.Contains($"error: {bad}:3: no count", _err.ToString());
        Assert.Contains("\"THIS IS A BAD LINE\"", _err.ToString());
        Assert.False(File.Exists(Temp("x.txt")));
        Assert.Equal(0, Run("convert", bad, "-o", Temp("x.txt"), "--lenient"));
        Assert.Contains("skipped 2 bad lines (first: 3, 6)", _err.ToString());
        Assert.Equal(1, Run("stats", Temp("missing.txt")));
        Assert.Equal(1, Run("top", Data("collapsed/inferno/diff-folded/results/default.txt")));
        Assert.Equal(0, Run("top", Data("collapsed/inferno/diff-folded/results/default.txt"), "--two-counts", "second"));
    }

    [Fact]
    public void UsageErrorsExitWith2()
    {
        Assert.Equal(2, Run("convert", Data("collapsed/speedscope/simple.txt")));
        Assert.Equal(2, Run("convert", "-o", Temp("a.txt")));
        Assert.Equal(2, Run("convert", Data("collapsed/speedscope/simple.txt"), "-o", Temp("a.txt"), "--bogus"));
        Assert.Equal(2, Run("top", Data("collapsed/speedscope/simple.txt"), "-n", "zero"));
        Assert.Equal(2, Run("flamegraph", Data("collapsed/speedscope/simple.txt")));
    }

    [Fact]
    public void TopListsBySelfAndByTotalWithoutCountingRecursionTwice()
    {
        Assert.Equal(0, Run("top", Data("collapsed/speedscope/recursion.txt"), "-n", "3"));
        string text = _out.ToString();
        Assert.Contains("top 3 by self", text);
        Assert.Contains("top 3 by total", text);
        string[] lines = text.Split('\n');
        int byTotal = Array.FindIndex(lines, l => l.StartsWith("top 3 by total", StringComparison.Ordinal));
        // "a" is on 9 of the 10 stacks, several times on most: 9, not the 15 a naive sum would give.
        Assert.EndsWith("1  10.00%               9  90.00%  a", lines[byTotal + 2].TrimEnd());
        Assert.Equal(3, lines.Skip(byTotal + 2).TakeWhile(l => l.Trim().Length > 0).Count());
    }

    [Fact]
    public void StatsReportsTheShape()
    {
        Assert.Equal(0, Run("stats", Data("collapsed/inferno/collapse-perf/results/single-event-collapsed.txt")));
        string text = _out.ToString();
        Assert.Contains("nodes         91 (root included)", text);
        Assert.Contains("max depth     90", text);
        Assert.Contains("leaves        1", text);
        Assert.Contains("native bytes", text);
    }

    [Fact]
    public void FlamegraphWritesSvg()
    {
        Assert.Equal(0, Run("flamegraph", Data("collapsed/FlameGraph/perf-vertx-stacks-01-collapsed-all.txt"), "-o", Temp("f.svg"), "--title", "vert.x"));
        string svg = File.ReadAllText(Temp("f.svg"));
        Assert.Contains(">vert.x</text>", svg);
        Assert.Contains("<title>", svg);
    }

    [Fact]
    public void LargeInputsReportProgress()
    {
        string big = Temp("big.txt");
        byte[] data = File.ReadAllBytes(Data("collapsed/FlameGraph/perf-vertx-stacks-01-collapsed-all.txt"));
        using (var f = File.Create(big))
            for (long written = 0; written <= ProfileInputs.ProgressThreshold; written += data.Length) f.Write(data);
        Assert.Equal(0, Run("stats", big));
        Assert.Contains("big.txt: 50%", _err.ToString());
        Assert.Contains("big.txt: done", _err.ToString());
    }
}
