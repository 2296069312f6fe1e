using System.Text;
using ProfileArena.Baseline;

namespace ProfileArena.Tests.Support;

/// <summary>Managed reference implementations of the embedding operations, over the Baseline port.</summary>
public static class Oracles
{
    private static readonly byte[] Other = "other"u8.ToArray();

    public static IEnumerable<(byte[] Stack, BaselineNode Node)> Walk(BaselineTree tree)
    {
        var stack = new Stack<(byte[] Path, BaselineNode Node)>();
        foreach (var c in tree.Root.Children) stack.Push((c.Name, c));
        while (stack.Count > 0)
        {
            var (path, node) = stack.Pop();
            yield return (path, node);
            foreach (var c in node.Children) stack.Push(([.. path, (byte)';', .. c.Name], c));
        }
    }

    /// <summary>pyroscope's minValue: the maxNodes-th largest total among non-root nodes, 0 when there are no more nodes than that.</summary>
    public static ulong MinValue(BaselineTree tree, long maxNodes)
    {
        var totals = Walk(tree).Select(n => n.Node.Total).OrderByDescending(t => t).ToList();
        return totals.Count <= maxNodes ? 0 : totals[(int)maxNodes - 1];
    }

    /// <summary>The tree after folding every child below minTotal into `other` (kept: total ≥ min or named other).</summary>
    public static BaselineTree FoldBelow(BaselineTree tree, ulong minTotal)
    {
        var result = new BaselineTree();
        var work = new Stack<(byte[]? Path, BaselineNode Node)>();
        work.Push((null, tree.Root));
        while (work.Count > 0)
        {
            var (path, node) = work.Pop();
            if (path != null) result.Insert(path, node.Self);
            ulong folded = 0;
            foreach (var c in node.Children)
            {
                byte[] childPath = path == null ? c.Name : [.. path, (byte)';', .. c.Name];
                if (c.Total >= minTotal || c.Name.AsSpan().SequenceEqual(Other)) work.Push((childPath, c));
                else folded += c.Total;
            }
            if (folded > 0) result.Insert(path == null ? Other : [.. path, (byte)';', .. Other], folded);
        }
        return result;
    }

    public static List<(string Stack, ulong Self, ulong Total)> Top(BaselineTree tree, int n, TopBy by)
        => TreeSnapshot.Of(tree)
            .Where(v => (by == TopBy.Self ? v.Self : v.Total) > 0)
            .OrderByDescending(v => by == TopBy.Self ? v.Self : v.Total)
            .ThenBy(v => v.Stack, StringComparer.Ordinal)
            .Take(n)
            .Select(v => (v.Stack, v.Self, v.Total))
            .ToList();

    public static (ProfileTree Tree, BaselineTree Baseline) FromFile(TreeStore store, string path)
    {
        var tree = store.CreateTree();
        var baseline = new BaselineTree();
        foreach (var (stack, count) in FoldedLines.Read(path))
        {
            tree.Insert(stack, count);
            baseline.Insert(Encoding.UTF8.GetBytes(stack), count);
        }
        return (tree, baseline);
    }

    public static BaselineTree Copy(BaselineTree tree)
    {
        var copy = new BaselineTree();
        foreach (var (path, node) in Walk(tree)) copy.Insert(path, node.Self);
        return copy;
    }
}
