using System.Text;
using ProfileArena.Formats;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Formats;

/// <summary>Every file of testdata/collapsed: strict import (or its documented rejection), the policy
/// that accepts it, and the export check against the file's own lines.</summary>
public class FoldedFilesTests
{
    public static TheoryData<string> CollapsedFiles() => new(SharedData.Files("collapsed").Select(SharedData.Relative));

    /// <summary>Files the strict defaults reject on purpose, with the reason and the option that accepts them.</summary>
    private static (string Reason, FoldedImportOptions Accepting)? StrictRejection(string relative)
    {
        if (relative.Contains("/diff-folded/results/", StringComparison.Ordinal) || relative.Contains("/differential/", StringComparison.Ordinal))
            return ("two counts", new FoldedImportOptions { TwoCountLines = TwoCountLinePolicy.UseSecond });
        if (relative.EndsWith("before_fractionals.txt", StringComparison.Ordinal) || relative.EndsWith("fractional.txt", StringComparison.Ordinal)
            || relative.EndsWith("with-space.txt", StringComparison.Ordinal))
            return ("fractional count", new FoldedImportOptions { FractionalCounts = FractionalCountPolicy.Round });
        return null;
    }

    private static ProfileTree Import(TreeStore store, string path, FoldedImportOptions? options = null)
    {
        ProfileTree tree = store.CreateTree();
        using FileStream file = File.OpenRead(path);
        FoldedFormat.Import(file, tree, options);
        return tree;
    }

    [Theory]
    [MemberData(nameof(CollapsedFiles))]
    public void ImportsLikeTheReferenceReading(string relative)
    {
        string path = Path.Combine(SharedData.TestData, relative);
        using var store = new TreeStore();
        var rejection = StrictRejection(relative);
        FoldedImportOptions options = FoldedImportOptions.Strict;
        if (rejection is { } r)
        {
            ProfileTree strict = store.CreateTree();
            strict.Insert("before", 1);
            using (FileStream file = File.OpenRead(path))
            {
                var e = Assert.Throws<ProfileFormatException>(() => FoldedFormat.Import(file, strict));
                Assert.Contains(r.Reason, e.Reason);
                int firstBad = FoldedReference.Parse(FoldedReference.Decode(File.ReadAllBytes(path)), FoldedImportOptions.Strict).First(l => l.Stack is null).Line;
                Assert.Equal(firstBad, e.LineNumber);
                Assert.False(string.IsNullOrEmpty(e.Excerpt));
            }
            Assert.Equal([new VisitedNode("before", 1, 1)], TreeSnapshot.Of(strict));
            options = r.Accepting;
        }
        ProfileTree tree = Import(store, path, options);
        TreeSnapshot.AssertSame(FoldedReference.TreeOfFile(path, options), tree);
        Assert.True(tree.Total > 0);
    }

    [Theory]
    [MemberData(nameof(CollapsedFiles))]
    public void ExportedLinesAreTheFilesLinesWithDuplicatesMerged(string relative)
    {
        string path = Path.Combine(SharedData.TestData, relative);
        FoldedImportOptions options = StrictRejection(relative)?.Accepting ?? FoldedImportOptions.Strict;
        using var store = new TreeStore();
        ProfileTree tree = Import(store, path, options);
        var output = new MemoryStream();
        long written = FoldedFormat.Export(tree, output);
        string[] exported = Encoding.UTF8.GetString(output.ToArray()).Split('\n')[..^1];
        Assert.Equal(written, exported.Length);

        var merged = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (var (_, stack, value) in FoldedReference.Parse(FoldedReference.Decode(File.ReadAllBytes(path)), options))
            merged[stack!] = merged.GetValueOrDefault(stack!) + value;
        string[] expected = merged.Where(kv => kv.Value > 0).Select(kv => $"{kv.Key} {kv.Value}").Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(expected, exported.Order(StringComparer.Ordinal).ToArray());

        // And export is the identity through import: the same tree but for value-less (total 0) paths.
        ProfileTree again = store.CreateTree();
        output.Position = 0;
        FoldedFormat.Import(output, again, new FoldedImportOptions { TwoCountLines = TwoCountLinePolicy.KeepAsFrameText, AllowEmpty = true });
        Assert.Equal(TreeSnapshot.Of(tree).Where(n => n.Total > 0), TreeSnapshot.Of(again));
    }

    [Fact]
    public void FlameGraphSortedFilesExportByteForByteWhenReSorted()
    {
        // FlameGraph's own output is sorted and has no duplicates: export, re-sorted, is the file.
        string path = Path.Combine(SharedData.TestData, "collapsed/FlameGraph/perf-vertx-stacks-01-collapsed-all.txt");
        using var store = new TreeStore();
        ProfileTree tree = Import(store, path);
        var output = new MemoryStream();
        FoldedFormat.Export(tree, output);
        string[] exported = Encoding.UTF8.GetString(output.ToArray()).Split('\n')[..^1];
        string[] original = File.ReadAllText(path).Split('\n')[..^1];
        Assert.Equal(original.Order(StringComparer.Ordinal), exported.Order(StringComparer.Ordinal));
        // The oddity of that line: a trailing empty frame, then two spaces. Split at the last space, the
        // last frame is " " (one space), as FlameGraph's own regex reads it, and the line survives exactly.
        Assert.Contains(exported, l => l.EndsWith("write0_[j];  3", StringComparison.Ordinal));
        Assert.Contains(TreeSnapshot.Of(tree), n => n.Stack.EndsWith("write0_[j]; ", StringComparison.Ordinal) && n.Self == 3);
    }

    [Fact]
    public void TheTwoMultipleInputFilesMergeIntoTheUnsortedWholeFile()
    {
        string dir = Path.Combine(SharedData.TestData, "collapsed/inferno/flamegraph");
        using var store = new TreeStore();
        ProfileTree merged = store.CreateTree();
        foreach (string part in new[] { "multiple-inputs/perf-vertx-stacks-01-collapsed-all-unsorted-1.txt", "multiple-inputs/perf-vertx-stacks-01-collapsed-all-unsorted-2.txt" })
        {
            using FileStream file = File.OpenRead(Path.Combine(dir, part));
            FoldedFormat.Import(file, merged);
        }
        ProfileTree whole = Import(store, Path.Combine(dir, "unsorted-input/perf-vertx-stacks-01-collapsed-all-unsorted.txt"));
        Assert.Equal(TreeSnapshot.Of(whole), TreeSnapshot.Of(merged));
    }

    [Fact]
    public void DifferentialFilesImportEitherSide()
    {
        string path = Path.Combine(SharedData.TestData, "collapsed/inferno/diff-folded/results/default.txt");
        using var store = new TreeStore();
        ProfileTree before = Import(store, path, new FoldedImportOptions { TwoCountLines = TwoCountLinePolicy.UseFirst });
        ProfileTree after = Import(store, path, new FoldedImportOptions { TwoCountLines = TwoCountLinePolicy.UseSecond });
        // "dd;[unknown];read;system_call_[k];sys_read_[k];vfs_read_[k];fsnotify_[k] 6 4"
        Assert.Contains(TreeSnapshot.Of(before), n => n.Stack == "dd;[unknown];read;system_call_[k];sys_read_[k];vfs_read_[k];fsnotify_[k]" && n.Self == 6);
        Assert.Contains(TreeSnapshot.Of(after), n => n.Stack == "dd;[unknown];read;system_call_[k];sys_read_[k];vfs_read_[k];fsnotify_[k]" && n.Self == 4);
        // The inputs of that diff are the two sides.
        ProfileTree beforeFile = Import(store, Path.Combine(SharedData.TestData, "collapsed/inferno/diff-folded/before.txt"));
        ProfileTree afterFile = Import(store, Path.Combine(SharedData.TestData, "collapsed/inferno/diff-folded/after.txt"));
        Assert.Equal(beforeFile.Total, before.Total);
        Assert.Equal(afterFile.Total, after.Total);
        ProfileTree frame = Import(store, path, new FoldedImportOptions { TwoCountLines = TwoCountLinePolicy.KeepAsFrameText });
        Assert.Contains(TreeSnapshot.Of(frame), n => n.Stack.EndsWith("fsnotify_[k] 6", StringComparison.Ordinal) && n.Self == 4);
    }

    [Fact]
    public void ZeroFractionalCountsAreExactIntegers()
    {
        // "31.0" and "6." are whole numbers: accepted under the strict defaults.
        string path = Path.Combine(SharedData.TestData, "collapsed/inferno/flamegraph/fractional-samples/zero-fractionals.txt");
        using var store = new TreeStore();
        ProfileTree tree = Import(store, path);
        Assert.Contains(TreeSnapshot.Of(tree), n => n.Stack == "cksum;cksum" && n.Self == 6);
    }

    [Fact]
    public void FractionalCountsRoundHalfUp()
    {
        string path = Path.Combine(SharedData.TestData, "collapsed/inferno/flamegraph/fractional-samples/fractional.txt");
        using var store = new TreeStore();
        ProfileTree tree = Import(store, path, new FoldedImportOptions { FractionalCounts = FractionalCountPolicy.Round });
        Assert.Contains(TreeSnapshot.Of(tree), n => n.Stack == "cksum;_start;__libc_start_main;main;cksum" && n.Self == 31); // 31.23
    }

    [Fact]
    public void ZeroCountsCreateTheirPath()
    {
        string path = Path.Combine(SharedData.TestData, "collapsed/inferno/collapse-ghcprof/results/ticks.txt");
        using var store = new TreeStore();
        ProfileTree tree = Import(store, path);
        var nodes = TreeSnapshot.Of(tree);
        Assert.Contains(nodes, n => n.Total == 0);
        Assert.Equal(FoldedReference.TreeOfFile(path, FoldedImportOptions.Strict).NodeCount, tree.NodeCount);
    }

    [Fact]
    public void NonAsciiUtf8AndCrlfSurvive()
    {
        string path = Path.Combine(SharedData.TestData, "collapsed/inferno/collapse-ghcprof/results/utf8.txt");
        using var store = new TreeStore();
        ProfileTree tree = Import(store, path);
        var stacks = new List<string>();
        tree.Iterate((stack, _, _) => stacks.Add(Encoding.UTF8.GetString(stack)));
        Assert.Contains(stacks, s => s.Any(c => c > 0x7F));
        Assert.DoesNotContain(stacks, s => s.Contains('\r'));
    }

    [Fact]
    public void VeryLongLineWithDepth90()
    {
        string path = Path.Combine(SharedData.TestData, "collapsed/inferno/collapse-perf/results/single-event-collapsed.txt");
        using var store = new TreeStore();
        ProfileTree tree = Import(store, path, new FoldedImportOptions { BufferBytes = 64 }); // the buffer must grow
        Assert.Equal(91, tree.NodeCount);
        Assert.Equal(10101010UL, tree.Total);
    }

    [Theory]
    [InlineData("collapsed/FlameGraph/perf-vertx-stacks-01-collapsed-all.txt")]
    [InlineData("collapsed/inferno/flamegraph/multiple-inputs/perf-vertx-stacks-01-collapsed-all-unsorted-1.txt")]
    public void TrailingSemicolonThenTwoSpacesEndsInAOneSpaceFrame(string relative)
    {
        // "...FileDispatcherImpl:.write0_[j];  3": the manifest's regex (lazy stack, then any whitespace)
        // calls the last frame empty; split at the last space, as FlameGraph's flamegraph.pl does, it is
        // " ". We follow FlameGraph: export then gives the line back byte for byte.
        using var store = new TreeStore();
        var nodes = TreeSnapshot.Of(Import(store, Path.Combine(SharedData.TestData, relative)));
        VisitedNode frame = Assert.Single(nodes, n => n.Stack.EndsWith("write0_[j]; ", StringComparison.Ordinal));
        Assert.Equal(3UL, frame.Self);
        Assert.Contains(nodes, n => n.Stack == frame.Stack[..^2] && n.Total >= 3);
    }

    [Theory]
    [InlineData("collapsed/speedscope/alternating.txt")]
    [InlineData("collapsed/speedscope/simple.txt")]
    [InlineData("collapsed/speedscope/recursion.txt")]
    public void DuplicatesAddAndALastLineWithoutNewlineCounts(string relative)
    {
        string path = Path.Combine(SharedData.TestData, relative);
        using var store = new TreeStore();
        ProfileTree tree = Import(store, path);
        var lines = FoldedReference.Parse(File.ReadAllText(path), FoldedImportOptions.Strict);
        Assert.Equal(lines.Aggregate(0UL, (sum, l) => sum + l.Value), tree.Total);
        Assert.True(lines.Select(l => l.Stack).Distinct().Count() < lines.Count);
    }
}
