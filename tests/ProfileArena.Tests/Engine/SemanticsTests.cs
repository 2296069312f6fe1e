using System.Text;
using ProfileArena.Baseline;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Engine;

/// <summary>The examples of tree-semantics.md, checked against the spec and against the Baseline port.</summary>
public class SemanticsTests
{
    [Theory]
    [InlineData("a;;b", new[] { "a", "a;", "a;;b" })]
    [InlineData("", new[] { "" })]
    [InlineData("a;", new[] { "a", "a;" })]
    [InlineData(";a", new[] { "", ";a" })]
    [InlineData(";;", new[] { "", ";", ";;" })]
    public void EmptySegmentsAreKept(string key, string[] expectedStacks)
    {
        using var store = new TreeStore();
        var tree = store.CreateTree();
        tree.Insert(key, 5);
        var nodes = TreeSnapshot.Of(tree);
        Assert.Equal(expectedStacks, nodes.Select(n => n.Stack));
        Assert.All(nodes, n => Assert.Equal(5UL, n.Total));
        Assert.Equal(expectedStacks.Select((_, i) => i == expectedStacks.Length - 1 ? 5UL : 0UL), nodes.Select(n => n.Self));
        Assert.Equal(5UL, tree.Total);
        Assert.Equal(expectedStacks.Length + 1, tree.NodeCount);
    }

    [Fact]
    public void FooBarBazMatchesTheGoKeys()
    {
        using var store = new TreeStore();
        var tree = store.CreateTree();
        tree.Insert("foo;bar;baz", 100);
        tree.Insert("foo;bar", 7);
        tree.Insert("foo;qux", 0); // value 0 still creates the path
        Assert.Equal(
            new (string, ulong)[] { (";", 0), (";;foo", 0), (";;foo;bar", 7), (";;foo;bar;baz", 100), (";;foo;qux", 0) },
            TreeSnapshot.AsGoKeys(tree));
        Assert.Equal(107UL, tree.Total);
        Assert.Equal(5, tree.NodeCount);
    }

    [Fact]
    public void SiblingsAreInOrdinalByteOrder()
    {
        string[] names = ["b", "aa", "a", "\u00e9", "B", "", "a\u0000", "\u007f", "ab"];
        using var store = new TreeStore();
        var tree = store.CreateTree();
        var baseline = new BaselineTree();
        foreach (var n in names) { tree.Insert(n, 1); baseline.Insert(n, 1); }
        var stacks = TreeSnapshot.Of(tree).Select(n => Encoding.Latin1.GetBytes(n.Stack)).ToList();
        for (int i = 1; i < stacks.Count; i++)
            Assert.True(stacks[i - 1].AsSpan().SequenceCompareTo(stacks[i]) < 0, $"{i - 1} vs {i} out of order");
        TreeSnapshot.AssertSame(baseline, tree);
    }

    [Fact]
    public void GoKeysOfBaselineAndArenaAgreeOnMixedInput()
    {
        string[] keys = ["a;b;c", "a;b", "a;;b", "", ";", "a;b;c", "x", "a;", ";a", "a;b;d"];
        using var store = new TreeStore();
        var tree = store.CreateTree();
        var baseline = new BaselineTree();
        ulong v = 1;
        foreach (var k in keys) { tree.Insert(k, v); baseline.Insert(k, v); v *= 3; }
        Assert.Equal(TreeSnapshot.GoKeys(baseline), TreeSnapshot.AsGoKeys(tree));
        TreeSnapshot.AssertSame(baseline, tree);
    }

    [Fact]
    public void OverflowThrowsAndLeavesTheTreeUnchanged()
    {
        using var store = new TreeStore();
        var tree = store.CreateTree();
        tree.Insert("a;b", ulong.MaxValue - 10);
        var before = TreeSnapshot.Of(tree);
        long nodesBefore = store.NodeCount;
        Assert.Throws<OverflowException>(() => tree.Insert("a;c;d", 11));
        Assert.Throws<OverflowException>(() => tree.Insert("a;b", 11));
        Assert.Equal(before, TreeSnapshot.Of(tree));
        Assert.Equal(nodesBefore, store.NodeCount);
        tree.Insert("a;c", 10); // exactly reaches the maximum
        Assert.Equal(ulong.MaxValue, tree.Total);
        Assert.Contains(new VisitedNode("a;c", 10, 10), TreeSnapshot.Of(tree));
    }
}
