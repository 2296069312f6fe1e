using ProfileArena.Formats;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Formats;

/// <summary>One test per file of testdata/bad: the strict outcome (error with line number and the target
/// unchanged, or import by documented policy) and the lenient one.</summary>
public class BadFilesTests
{
    private static string Bad(string name) => Path.Combine(SharedData.TestData, "bad", name);

    private static ProfileTree Prefilled(TreeStore store)
    {
        ProfileTree tree = store.CreateTree();
        tree.Insert("main;work", 7);
        tree.Insert("main", 1);
        return tree;
    }

    private static ProfileFormatException StrictFails(string path, long line)
    {
        using var store = new TreeStore();
        ProfileTree tree = Prefilled(store);
        var before = TreeSnapshot.Of(tree);
        long nodes = store.NodeCount, symbols = store.SymbolCount;
        using FileStream file = File.OpenRead(path);
        var e = Assert.Throws<ProfileFormatException>(() => FoldedFormat.Import(file, tree));
        Assert.Equal(line, e.LineNumber);
        Assert.Equal(before, TreeSnapshot.Of(tree));
        Assert.Equal(nodes, store.NodeCount);
        Assert.Equal(symbols, store.SymbolCount);
        if (line > 0) Assert.StartsWith($"line {line}: ", e.Message);
        return e;
    }

    private static (ProfileTree Tree, FoldedImportResult Result) Import(TreeStore store, string path, FoldedImportOptions? options = null)
    {
        ProfileTree tree = store.CreateTree();
        using FileStream file = File.OpenRead(path);
        return (tree, FoldedFormat.Import(file, tree, options));
    }

    private static List<VisitedNode> SpeedscopeSimple()
    {
        using var store = new TreeStore();
        return TreeSnapshot.Of(Import(store, Path.Combine(SharedData.TestData, "collapsed/speedscope/simple.txt")).Tree);
    }

    [Fact]
    public void AustinCommentAndBlankLinesAreSkipped()
    {
        using var store = new TreeStore();
        var (tree, result) = Import(store, Bad("inferno/austin-flames_comment-and-blank-lines.txt"));
        Assert.Equal((8L, 2L, 4L, 2L, 0L), (result.Lines, result.StackLines, result.CommentLines, result.BlankLines, result.SkippedLines));
        Assert.DoesNotContain(TreeSnapshot.Of(tree), n => n.Stack.StartsWith('#'));
        Assert.Equal(13, TreeSnapshot.Of(tree).Max(n => n.Stack.Split(';').Length));
    }

    [Fact]
    public void BadLinesFailStrictAtLine3AndAreSkippedLeniently()
    {
        var e = StrictFails(Bad("inferno/bad-lines_no-count-and-blank-lines.txt"), 3);
        Assert.Equal("THIS IS A BAD LINE", e.Excerpt);
        Assert.Contains("no count", e.Reason);

        using var store = new TreeStore();
        var (tree, result) = Import(store, Bad("inferno/bad-lines_no-count-and-blank-lines.txt"), FoldedImportOptions.Lenient);
        Assert.Equal(2, result.SkippedLines);
        Assert.Equal([3L, 6L], result.SkippedLineNumbers);
        Assert.Equal(1, result.BlankLines);
        Assert.Equal(7, result.StackLines);
        Assert.Contains(TreeSnapshot.Of(tree), n => n.Stack == "noploop;main" && n.Self == 548); // duplicate lines add
    }

    [Fact]
    public void LineWithoutCountFailsStrictAtLine3()
    {
        var e = StrictFails(Bad("inferno/bad_before_line-without-count.txt"), 3);
        Assert.Equal("dd;[unknown];read;system_call_[k];__fdget_pos_[k]", e.Excerpt);
        using var store = new TreeStore();
        var (_, result) = Import(store, Bad("inferno/bad_before_line-without-count.txt"), FoldedImportOptions.Lenient);
        Assert.Equal([3L], result.SkippedLineNumbers);
    }

    [Fact]
    public void EmptyFileIsRejectedUnlessAllowed()
    {
        var e = StrictFails(Bad("inferno/empty_zero-bytes.txt"), 0);
        Assert.Contains("no stack lines", e.Message);
        using var store = new TreeStore();
        var (tree, result) = Import(store, Bad("inferno/empty_zero-bytes.txt"), new FoldedImportOptions { AllowEmpty = true });
        Assert.Equal(0, result.Lines);
        Assert.Equal(1, tree.NodeCount);
    }

    [Fact]
    public void CrlfImportsLikeLf()
    {
        using var store = new TreeStore();
        Assert.Equal(SpeedscopeSimple(), TreeSnapshot.Of(Import(store, Bad("speedscope/simple-crlf.txt")).Tree));
    }

    [Fact]
    public void Utf16BigEndianWithBomIsTranscoded()
    {
        using var store = new TreeStore();
        var (tree, result) = Import(store, Bad("speedscope/simple-utf16-be_bom.txt"));
        Assert.Equal("UTF-16BE with BOM", result.Encoding);
        Assert.Equal(SpeedscopeSimple(), TreeSnapshot.Of(tree));
    }

    [Fact]
    public void Utf16LittleEndianWithBomAndCrlfIsTranscoded()
    {
        using var store = new TreeStore();
        var (tree, result) = Import(store, Bad("speedscope/simple-utf16-le_bom_crlf.txt"));
        Assert.Equal("UTF-16LE with BOM", result.Encoding);
        Assert.Equal(SpeedscopeSimple(), TreeSnapshot.Of(tree));
    }

    [Fact]
    public void CommentsAndAnInvalidLineFailStrictAtLine8()
    {
        var e = StrictFails(Bad("speedscope/simple-with-invalids_comments-and-no-count-line.txt"), 8);
        Assert.Equal("invalid line", e.Excerpt);
        using var store = new TreeStore();
        var (tree, result) = Import(store, Bad("speedscope/simple-with-invalids_comments-and-no-count-line.txt"), FoldedImportOptions.Lenient);
        Assert.Equal(2, result.CommentLines);
        Assert.Equal([8L], result.SkippedLineNumbers);
        Assert.Equal(SpeedscopeSimple(), TreeSnapshot.Of(tree));
    }

    [Fact]
    public void EveryBadFileHasATest()
    {
        string[] covered =
        [
            "inferno/austin-flames_comment-and-blank-lines.txt", "inferno/bad-lines_no-count-and-blank-lines.txt",
            "inferno/bad_before_line-without-count.txt", "inferno/empty_zero-bytes.txt", "speedscope/simple-crlf.txt",
            "speedscope/simple-utf16-be_bom.txt", "speedscope/simple-utf16-le_bom_crlf.txt",
            "speedscope/simple-with-invalids_comments-and-no-count-line.txt",
        ];
        Assert.Equal(covered.Select(c => "bad/" + c).Order(StringComparer.Ordinal), SharedData.Files("bad").Select(SharedData.Relative));
    }
}
