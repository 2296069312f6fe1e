using System.Text;

namespace ProfileArena.Formats;

/// <summary>One function (frame name) of a tree with its values summed over the whole tree.</summary>
/// <param name="Name">The frame name (invalid UTF-8 shown as U+FFFD).</param>
/// <param name="Self">Sum of the self values of every node of that name.</param>
/// <param name="Total">Sum of the totals of the nodes of that name that have no ancestor of the same
/// name, so a recursive function is counted once per stack.</param>
public readonly record struct FunctionTotal(string Name, ulong Self, ulong Total);

/// <summary>Per-function aggregation of a tree: what <c>profilearena top</c> prints and the server's
/// top-functions endpoint answers (by function, not by stack).</summary>
public static class FunctionTotals
{
    /// <summary>Every function of <paramref name="tree"/>, in no particular order.</summary>
    public static List<FunctionTotal> Compute(ProfileTree tree)
    {
        var visitor = new Aggregator(new Dictionary<string, (ulong Self, ulong Total)>(StringComparer.Ordinal), new OpenPath());
        tree.Iterate(ref visitor);
        return [.. visitor.Functions.Select(kv => new FunctionTotal(kv.Key, kv.Value.Self, kv.Value.Total))];
    }

    /// <summary>The <paramref name="n"/> functions with the largest self (or total), largest first, ties by name (ordinal).</summary>
    public static List<FunctionTotal> Top(ProfileTree tree, int n, TopBy by)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        IEnumerable<FunctionTotal> all = Compute(tree);
        var sorted = by == TopBy.Self ? all.OrderByDescending(f => f.Self) : all.OrderByDescending(f => f.Total);
        return [.. sorted.ThenBy(f => f.Name, StringComparer.Ordinal).Take(n)];
    }

    /// <summary>The names on the current path, with how often each occurs, so that "is this name already an
    /// ancestor" costs O(1) instead of a scan of the path (quadratic on deep stacks).</summary>
    private sealed class OpenPath
    {
        public StackDepthTracker Depth { get; } = new();
        public List<string> Names { get; } = [];
        public Dictionary<string, int> Counts { get; } = new(StringComparer.Ordinal);

        public void TruncateTo(int length)
        {
            for (int i = Names.Count - 1; i >= length; i--)
            {
                string name = Names[i];
                if (--Counts[name] == 0) Counts.Remove(name);
                Names.RemoveAt(i);
            }
        }

        public void Push(string name)
        {
            Names.Add(name);
            Counts[name] = Counts.GetValueOrDefault(name) + 1;
        }
    }

    private readonly struct Aggregator(Dictionary<string, (ulong Self, ulong Total)> functions, OpenPath path) : IStackVisitor
    {
        public Dictionary<string, (ulong Self, ulong Total)> Functions => functions;

        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
        {
            int depth = path.Depth.Next(stack);
            path.TruncateTo(depth - 1);
            string name = Encoding.UTF8.GetString(stack[path.Depth.NameStart..]);
            bool recursive = path.Counts.ContainsKey(name);
            path.Push(name);
            var (s, t) = functions.GetValueOrDefault(name);
            // Saturating: a merged query may pass 2^64 - 1 in theory.
            functions[name] = (s > ulong.MaxValue - self ? ulong.MaxValue : s + self, recursive ? t : t > ulong.MaxValue - total ? ulong.MaxValue : t + total);
        }
    }
}
