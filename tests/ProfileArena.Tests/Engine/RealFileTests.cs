using ProfileArena.Baseline;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Engine;

/// <summary>Every collapsed file in ../shared/testdata: each line's stack and count into the arena and the Baseline.</summary>
public class RealFileTests
{
    public static TheoryData<string> CollapsedFiles()
    {
        var data = new TheoryData<string>();
        foreach (var f in SharedData.Files("collapsed")) data.Add(SharedData.Relative(f));
        return data;
    }

    [Theory]
    [MemberData(nameof(CollapsedFiles))]
    public void EveryLineLandsWhereItShould(string relativePath)
    {
        var lines = FoldedLines.Read(Path.Combine(SharedData.TestData, relativePath));
        using var store = new TreeStore();
        var tree = store.CreateTree();
        var baseline = new BaselineTree();
        foreach (var (stack, count) in lines)
        {
            tree.Insert(stack, count);
            baseline.Insert(stack, count);
        }
        TreeSnapshot.AssertSame(baseline, tree);

        // Each distinct stack's self is the sum of its lines' counts; the total is the sum of all.
        var expectedSelf = lines.GroupBy(l => l.Stack, StringComparer.Ordinal)
            .ToDictionary(g => TreeSnapshot.Latin1(System.Text.Encoding.UTF8.GetBytes(g.Key)), g => g.Aggregate(0UL, (s, l) => s + l.Count));
        var nodes = TreeSnapshot.Of(tree).ToDictionary(n => n.Stack);
        foreach (var (stack, self) in expectedSelf)
            Assert.True(nodes.TryGetValue(stack, out var node) && node.Self == self, $"stack {stack}: expected self {self}");
        Assert.Equal(lines.Aggregate(0UL, (s, l) => s + l.Count), tree.Total);
    }
}
