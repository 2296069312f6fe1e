using System.Text;
using ProfileArena.Baseline;
using ProfileArena.Formats;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Formats;

/// <summary>The folded policies on small inputs made here, for the oddities no shared file has.</summary>
public class FoldedPolicyTests
{
    private static (List<VisitedNode> Nodes, FoldedImportResult Result) Import(byte[] input, FoldedImportOptions? options = null)
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        FoldedImportResult result = FoldedFormat.Import(new MemoryStream(input), tree, options);
        return (TreeSnapshot.Of(tree), result);
    }

    private static (List<VisitedNode> Nodes, FoldedImportResult Result) Import(string input, FoldedImportOptions? options = null) =>
        Import(Encoding.UTF8.GetBytes(input), options);

    private static ProfileFormatException Fails(string input, long line, FoldedImportOptions? options = null)
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        tree.Insert("kept", 3);
        var e = Assert.Throws<ProfileFormatException>(() => FoldedFormat.Import(new MemoryStream(Encoding.UTF8.GetBytes(input)), tree, options));
        Assert.Equal(line, e.LineNumber);
        Assert.Equal([new VisitedNode("kept", 3, 3)], TreeSnapshot.Of(tree));
        return e;
    }

    [Fact]
    public void Utf8BomIsSkipped()
    {
        var (nodes, result) = Import([0xEF, 0xBB, 0xBF, .. "a;b 2\n"u8]);
        Assert.Equal("UTF-8 with BOM", result.Encoding);
        Assert.Equal([new VisitedNode("a", 0, 2), new VisitedNode("a;b", 2, 2)], nodes);
    }

    [Fact]
    public void Utf16WithoutBomIsRejectedClearly()
    {
        using var store = new TreeStore();
        var e = Assert.Throws<ProfileFormatException>(() =>
            FoldedFormat.Import(new MemoryStream(Encoding.Unicode.GetBytes("a;b 2\n")), store.CreateTree()));
        Assert.Contains("UTF-16 without a byte-order mark", e.Message);
    }

    [Fact]
    public void CountsUpTo2Pow64Minus1AreExactAndAboveAreRejected()
    {
        Assert.Equal(ulong.MaxValue, Import("a 18446744073709551615\n").Nodes[0].Self);
        var e = Fails("a 1\nb 18446744073709551616\n", 2);
        Assert.Contains("above 2^64", e.Reason);
    }

    [Fact]
    public void ASumPast2Pow64FailsAtTheLineThatOverflows()
    {
        var e = Fails("a 18446744073709551615\nb 1\n", 2);
        Assert.Contains("2^64", e.Reason);
    }

    [Fact]
    public void NegativeCountsAreRejected() => Assert.Contains("negative", Fails("a 1\nb -5\n", 2).Reason);

    [Fact]
    public void FractionalCountsAreRejectedByDefault() => Assert.Contains("fractional", Fails("a 1\n\nb 0.5\n", 3).Reason);

    [Theory]
    [InlineData("0.4", 0UL)]
    [InlineData("0.5", 1UL)]
    [InlineData("2.49", 2UL)]
    [InlineData("7.", 7UL)]
    [InlineData("7.000", 7UL)]
    public void RoundingIsHalfUp(string count, ulong expected) =>
        Assert.Equal(expected, Import($"a {count}\n", new FoldedImportOptions { FractionalCounts = FractionalCountPolicy.Round }).Nodes[0].Self);

    [Theory]
    [InlineData("a b c")]
    [InlineData("a;b 12V.43")]
    [InlineData("a 1e5")]
    [InlineData("a +5")]
    [InlineData("nospace")]
    public void LinesWithoutACountAreRejected(string line) => Assert.Contains("no count", Fails("x 1\n" + line + "\n", 2).Reason);

    [Fact]
    public void TwoCountLinesAreRejectedByDefaultNamingTheChoices()
    {
        var e = Fails("a;b 3 4\n", 1);
        Assert.Contains("UseFirst", e.Reason);
        Assert.Equal(3UL, Import("a;b 3 4\n", new FoldedImportOptions { TwoCountLines = TwoCountLinePolicy.UseFirst }).Nodes[1].Self);
        Assert.Equal(4UL, Import("a;b 3 4\n", new FoldedImportOptions { TwoCountLines = TwoCountLinePolicy.UseSecond }).Nodes[1].Self);
        Assert.Equal(new VisitedNode("a;b 3", 4, 4), Import("a;b 3 4\n", new FoldedImportOptions { TwoCountLines = TwoCountLinePolicy.KeepAsFrameText }).Nodes[1]);
    }

    [Fact]
    public void SpacesTabsCommentsAndBlankLines()
    {
        var (nodes, result) = Import("# header\n// note\n\n   \t\nmain;do work;sleep 5\nmain;x\t7\t\r\n  \nmain;y 1   \n");
        Assert.Equal(
            [new VisitedNode("main", 0, 13), new VisitedNode("main;do work", 0, 5), new VisitedNode("main;do work;sleep", 5, 5),
             new VisitedNode("main;x", 7, 7), new VisitedNode("main;y", 1, 1)], nodes);
        Assert.Equal((8L, 3L, 2L, 3L), (result.Lines, result.StackLines, result.CommentLines, result.BlankLines));
    }

    [Fact]
    public void EmptyFramesAndEmptyStacksFollowTheTreeSemantics()
    {
        var (nodes, _) = Import(";a;;b; 2\n 3\n");
        var expected = new BaselineTree();
        expected.Insert(";a;;b;", 2);
        expected.Insert("", 3);
        var e = TreeSnapshot.Of(expected);
        Assert.Equal(e, nodes);
    }

    [Fact]
    public void NonUtf8BytesAreKeptAsIs()
    {
        var (nodes, _) = Import([(byte)'a', 0xFF, 0x80, (byte)';', (byte)'b', (byte)' ', (byte)'1', (byte)'\n']);
        Assert.Equal("a\u00FF\u0080;b", nodes[1].Stack); // Latin-1 view of the raw bytes
    }

    [Fact]
    public void LinesLongerThanTheCapAreRejected()
    {
        string longLine = string.Join(';', Enumerable.Repeat("frame", 200)) + " 1\n";
        var e = Fails("a 1\n" + longLine, 2, new FoldedImportOptions { MaxLineBytes = 512, BufferBytes = 64 });
        Assert.Contains("longer than 512", e.Reason);
        Assert.Equal(201, Import(longLine, new FoldedImportOptions { BufferBytes = 16 }).Nodes.Count + 1);
    }

    [Fact]
    public void TinyBuffersSplitLinesAnywhereWithTheSameResult()
    {
        string path = Path.Combine(SharedData.TestData, "collapsed/inferno/collapse-vsprof/results/vsprof-default.txt"); // CRLF
        byte[] bytes = File.ReadAllBytes(path);
        var reference = Import(bytes).Nodes;
        foreach (int size in new[] { 16, 17, 31, 100, 4096 })
            Assert.Equal(reference, Import(bytes, new FoldedImportOptions { BufferBytes = size }).Nodes);
    }

    [Fact]
    public void LenientReportsOnlyTheFirstFewLineNumbers()
    {
        var text = new StringBuilder();
        for (int i = 0; i < 30; i++) text.Append(i % 2 == 0 ? "ok 1\n" : "bad\n");
        var (_, result) = Import(text.ToString(), new FoldedImportOptions { BadLines = BadLinePolicy.Skip, MaxReportedLines = 3 });
        Assert.Equal(15, result.SkippedLines);
        Assert.Equal([2L, 4L, 6L], result.SkippedLineNumbers);
        Assert.Equal(15UL, result.Total);
    }

    [Fact]
    public void ImportAddsToWhatTheTreeHolds()
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        tree.Insert("a;b", 1);
        FoldedFormat.Import(new MemoryStream("a;b 2\na;c 0\n"u8.ToArray()), tree);
        Assert.Equal([new VisitedNode("a", 0, 3), new VisitedNode("a;b", 3, 3), new VisitedNode("a;c", 0, 0)], TreeSnapshot.Of(tree));
    }

    [Fact]
    public void ImportWorksAcrossStoresAndIntoTheSameStore()
    {
        using var store = new TreeStore();
        ProfileTree a = store.CreateTree(), b = store.CreateTree();
        FoldedFormat.Import(new MemoryStream("x;y 2\n"u8.ToArray()), a);
        FoldedFormat.Import(new MemoryStream("x;y 2\n"u8.ToArray()), b);
        Assert.Equal(TreeSnapshot.Of(a), TreeSnapshot.Of(b));
    }
}

public class ImportCommitTests
{
    [Fact]
    public void AStoreCapHitAtCommitLeavesTheTargetUnchanged()
    {
        using var store = new TreeStore(new TreeStoreOptions { MaxNodes = 6 });
        ProfileTree tree = store.CreateTree();
        tree.Insert("a;b", 1);
        var before = TreeSnapshot.Of(tree);
        Assert.Throws<StoreLimitExceededException>(() => FoldedFormat.Import(new MemoryStream("a;c 1\nd;e;f 2\n"u8.ToArray()), tree));
        Assert.Equal(before, TreeSnapshot.Of(tree));
        Assert.Equal(3, store.NodeCount);
    }

    [Fact]
    public void AnOverflowAtCommitLeavesTheTargetUnchanged()
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        tree.Insert("a", ulong.MaxValue - 1);
        Assert.Throws<OverflowException>(() => FoldedFormat.Import(new MemoryStream("b 2\n"u8.ToArray()), tree));
        Assert.Equal([new VisitedNode("a", ulong.MaxValue - 1, ulong.MaxValue - 1)], TreeSnapshot.Of(tree));
    }
}
