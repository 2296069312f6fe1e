using System.Text;
using ProfileArena.Baseline;

namespace ProfileArena.Tests.Support;

/// <summary>One visited node: the stack as Latin-1 (one char per byte, so any byte survives), self, total.</summary>
public readonly record struct VisitedNode(string Stack, ulong Self, ulong Total)
{
    public override string ToString() => $"{Escape(Stack)} self={Self} total={Total}";

    private static string Escape(string s)
    {
        var sb = new StringBuilder();
        foreach (char c in s) sb.Append(c is >= ' ' and < (char)0x7F ? c.ToString() : $"\\x{(int)c:X2}");
        return sb.ToString();
    }
}

public static class TreeSnapshot
{
    public static string Latin1(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);

    public static List<VisitedNode> Of(ProfileTree tree)
    {
        var nodes = new List<VisitedNode>();
        tree.Iterate((stack, self, total) => nodes.Add(new VisitedNode(Latin1(stack), self, total)));
        return nodes;
    }

    public static List<VisitedNode> Of(BaselineTree tree)
    {
        var nodes = new List<VisitedNode>();
        tree.Iterate((stack, self, total) => nodes.Add(new VisitedNode(Latin1(stack), self, total)));
        return nodes;
    }

    /// <summary>
    /// The arena's view mapped back to the Go reference's Iterate output: root first as ";" with the
    /// root's self (always 0: no key ends at the root), then ";;" + path for every node.
    /// </summary>
    public static List<(string Key, ulong Self)> AsGoKeys(ProfileTree tree)
    {
        var keys = new List<(string, ulong)> { (";", 0UL) };
        tree.Iterate((stack, self, _) => keys.Add((";;" + Latin1(stack), self)));
        return keys;
    }

    public static List<(string Key, ulong Self)> GoKeys(BaselineTree tree)
    {
        var keys = new List<(string, ulong)>();
        tree.IterateGo((key, self) => keys.Add((Latin1(key), self)));
        return keys;
    }

    /// <summary>Asserts node-by-node equality, in order, and reports the first difference readably.</summary>
    public static void AssertSame(BaselineTree expected, ProfileTree actual)
    {
        List<VisitedNode> e = Of(expected), a = Of(actual);
        for (int i = 0; i < Math.Min(e.Count, a.Count); i++)
            if (e[i] != a[i]) Assert.Fail($"node {i} differs: expected {e[i]}, got {a[i]}");
        Assert.Equal(e.Count, a.Count);
        Assert.Equal(expected.Total, actual.Total);
        Assert.Equal(expected.NodeCount, actual.NodeCount);
    }
}
