using System.Text;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Support;

/// <summary>
/// The plainest model of shared/tree-semantics.md: a dictionary from path (names joined by ';', as Latin-1 so
/// every byte survives) to (self, total), and the iteration order by sorting paths segment by segment with
/// ordinal comparison. No nodes, no children lists: nothing shared with either engine or with the Baseline.
/// </summary>
public sealed class ReferenceTree : IKeySink
{
    private readonly Dictionary<string, (ulong Self, ulong Total)> _paths = new(StringComparer.Ordinal);

    /// <summary>The root's total: the sum of every inserted value.</summary>
    public ulong Total { get; private set; }

    /// <summary>Nodes, root included.</summary>
    public long NodeCount => _paths.Count + 1;

    /// <summary>Whether inserting <paramref name="value"/> would overflow the root's total (the engines then throw
    /// <see cref="OverflowException"/> and change nothing).</summary>
    public bool WouldOverflow(ulong value) => value > ulong.MaxValue - Total;

    /// <summary>Adds <paramref name="value"/> to the total of every prefix of the key (split on every ';', empty
    /// names kept) and to the self of the whole key; an overflowing value is refused and changes nothing.</summary>
    public void Insert(ReadOnlySpan<byte> key, ulong value)
    {
        if (WouldOverflow(value))
            throw new OverflowException("the root's total would overflow");
        Total += value;
        string path = Encoding.Latin1.GetString(key);
        for (int end = path.IndexOf(';'); ; end = path.IndexOf(';', end + 1))
        {
            bool last = end < 0;
            string prefix = last ? path : path[..end];
            (ulong self, ulong total) = _paths.GetValueOrDefault(prefix);
            _paths[prefix] = (last ? self + value : self, total + value);
            if (last) break;
        }
    }

    /// <summary>Every node but the root, depth-first, siblings in ordinal byte order: what Iterate yields.</summary>
    public List<VisitedNode> Nodes() =>
        [.. _paths.OrderBy(p => p.Key.Split(';'), SegmentOrder.Instance).Select(p => new VisitedNode(p.Key, p.Value.Self, p.Value.Total))];

    /// <summary>Paths compared name by name (ordinal: Latin-1 chars compare as the unsigned bytes they stand for);
    /// an ancestor, a prefix of names, comes first: that is pre-order.</summary>
    private sealed class SegmentOrder : IComparer<string[]>
    {
        public static readonly SegmentOrder Instance = new();

        public int Compare(string[]? x, string[]? y)
        {
            for (int i = 0; i < Math.Min(x!.Length, y!.Length); i++)
            {
                int c = string.CompareOrdinal(x[i], y[i]);
                if (c != 0) return c;
            }
            return x.Length.CompareTo(y.Length);
        }
    }
}
