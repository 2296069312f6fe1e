using System.Text.Json;
using ProfileArena.Formats;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Formats;

/// <summary>FlamebearerFormat.ExportDiff ("double") decoded back and compared path by path with both trees,
/// and FunctionTotals against a plain reading of the stacks.</summary>
public class FlamebearerDiffTests
{
    private sealed record Side(ulong X, ulong Total, ulong Self);
    private sealed record DiffNode(int Level, Side Left, Side Right, string Name);

    /// <summary>Undoes both delta encodings and names nodes by path (found by left-or-right x containment).</summary>
    private static (Dictionary<string, (Side Left, Side Right)> Paths, JsonElement Root) Decode(byte[] json)
    {
        JsonElement root = JsonDocument.Parse(json).RootElement;
        JsonElement fb = root.GetProperty("flamebearer");
        string[] names = fb.GetProperty("names").EnumerateArray().Select(n => n.GetString()!).ToArray();
        var levels = new List<List<DiffNode>>();
        foreach (JsonElement l in fb.GetProperty("levels").EnumerateArray())
        {
            ulong[] v = l.EnumerateArray().Select(e => e.GetUInt64()).ToArray();
            Assert.Equal(0, v.Length % 7);
            var row = new List<DiffNode>();
            ulong leftEnd = 0, rightEnd = 0;
            for (int i = 0; i < v.Length; i += 7)
            {
                var left = new Side(leftEnd + v[i], v[i + 1], v[i + 2]);
                var right = new Side(rightEnd + v[i + 3], v[i + 4], v[i + 5]);
                leftEnd = left.X + left.Total;
                rightEnd = right.X + right.Total;
                row.Add(new DiffNode(levels.Count, left, right, names[v[i + 6]]));
            }
            levels.Add(row);
        }
        var paths = new Dictionary<string, (Side, Side)>();
        var pathOf = new Dictionary<DiffNode, string>();
        for (int level = 1; level < levels.Count; level++)
        {
            // Children are emitted in their parent's order on both sides: walk the parents, each
            // taking the children whose x falls in its span on the side where it is non-empty.
            foreach (DiffNode n in levels[level])
            {
                DiffNode parent = levels[level - 1].Last(p =>
                    n.Left.Total > 0 ? p.Left.X <= n.Left.X && n.Left.X < p.Left.X + p.Left.Total
                                     : p.Right.X <= n.Right.X && n.Right.X < p.Right.X + p.Right.Total);
                Assert.True(n.Left.X + n.Left.Total <= parent.Left.X + parent.Left.Total);
                Assert.True(n.Right.X + n.Right.Total <= parent.Right.X + parent.Right.Total);
                string path = level == 1 ? n.Name : pathOf[parent] + ";" + n.Name;
                pathOf[n] = path;
                paths[path] = (n.Left, n.Right);
            }
        }
        return (paths, root);
    }

    private static Dictionary<string, (ulong Self, ulong Total)> Nodes(ProfileTree tree)
    {
        var nodes = new Dictionary<string, (ulong, ulong)>(StringComparer.Ordinal);
        tree.Iterate((stack, self, total) => nodes[System.Text.Encoding.UTF8.GetString(stack)] = (self, total));
        return nodes;
    }

    private static void Fill(ProfileTree tree, Random random, int lines, string alphabet)
    {
        for (int i = 0; i < lines; i++)
        {
            string stack = string.Join(";", Enumerable.Range(0, random.Next(1, 5)).Select(_ => alphabet[random.Next(alphabet.Length)].ToString()));
            tree.Insert(stack, (ulong)random.Next(1, 50));
        }
    }

    [Fact]
    public void DiffOfRandomTreesKeepsBothSidesExactly()
    {
        var random = new Random(17);
        for (int round = 0; round < 100; round++)
        {
            using var store = new TreeStore();
            ProfileTree left = store.CreateTree(), right = store.CreateTree();
            Fill(left, random, random.Next(0, 30), "abcde");
            Fill(right, random, random.Next(0, 30), "cdefg");
            ulong leftTotal = left.Total, rightTotal = right.Total;
            var leftNodes = Nodes(left);
            var rightNodes = Nodes(right);
            using var output = new MemoryStream();
            FlamebearerFormat.ExportDiff(left, right, output, new FlamebearerOptions { MaxNodes = 0 });
            var (paths, root) = Decode(output.ToArray());

            Assert.Equal("double", root.GetProperty("metadata").GetProperty("format").GetString());
            Assert.Equal(leftTotal + rightTotal, root.GetProperty("flamebearer").GetProperty("numTicks").GetUInt64());
            Assert.Equal(leftTotal, root.GetProperty("leftTicks").GetUInt64());
            Assert.Equal(rightTotal, root.GetProperty("rightTicks").GetUInt64());
            ulong maxSelf = leftNodes.Values.Concat(rightNodes.Values).Select(v => v.Self).DefaultIfEmpty(0UL).Max();
            Assert.Equal(maxSelf, root.GetProperty("flamebearer").GetProperty("maxSelf").GetUInt64());
            // Every path of either tree, with each side's values (0 where it is missing); nothing else.
            Assert.Equal(leftNodes.Keys.Union(rightNodes.Keys).Order(StringComparer.Ordinal), paths.Keys.Order(StringComparer.Ordinal));
            foreach (var (path, (l, r)) in paths)
            {
                Assert.Equal(leftNodes.GetValueOrDefault(path), (l.Self, l.Total));
                Assert.Equal(rightNodes.GetValueOrDefault(path), (r.Self, r.Total));
            }
            // The inputs are unchanged.
            Assert.Equal(leftNodes, Nodes(left));
            Assert.Equal(rightNodes, Nodes(right));
        }
    }

    [Fact]
    public void DiffFoldsSmallNodesIntoOtherOnBothSides()
    {
        var random = new Random(23);
        using var store = new TreeStore();
        ProfileTree left = store.CreateTree(), right = store.CreateTree();
        Fill(left, random, 300, "abcdefghij");
        Fill(right, random, 300, "fghijklmno");
        using var output = new MemoryStream();
        FlamebearerFormat.ExportDiff(left, right, output, new FlamebearerOptions { MaxNodes = 20 });
        var (paths, root) = Decode(output.ToArray());
        Assert.True(paths.Count < Nodes(left).Count + Nodes(right).Count);
        Assert.Contains(paths.Keys, p => p.EndsWith("other", StringComparison.Ordinal));
        // Every level still adds up on each side: children (and "other") sum to the parent's total minus self.
        JsonElement levels = root.GetProperty("flamebearer").GetProperty("levels");
        ulong[] level0 = levels[0].EnumerateArray().Select(e => e.GetUInt64()).ToArray();
        Assert.Equal((left.Total, right.Total), (level0[1], level0[4]));
        var byDepth = paths.GroupBy(p => p.Key.Count(c => c == ';')).ToDictionary(g => g.Key, g => g.ToList());
        ulong leftDepth1 = byDepth[0].Aggregate(0UL, (a, p) => a + p.Value.Left.Total);
        ulong rightDepth1 = byDepth[0].Aggregate(0UL, (a, p) => a + p.Value.Right.Total);
        Assert.Equal((left.Total, right.Total), (leftDepth1, rightDepth1));
    }

    [Fact]
    public void SingleExportWritesSpyNameAndTimeline()
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        tree.Insert("a;b", 3);
        using var output = new MemoryStream();
        FlamebearerFormat.Export(tree, output, new FlamebearerOptions
        {
            SpyName = "nodespy",
            WriteTimeline = true,
            Timeline = new FlamebearerTimeline(1000, 10, [1, 0, 2]),
        });
        JsonElement root = JsonDocument.Parse(output.ToArray()).RootElement;
        Assert.Equal("nodespy", root.GetProperty("metadata").GetProperty("spyName").GetString());
        Assert.Equal("single", root.GetProperty("metadata").GetProperty("format").GetString());
        JsonElement timeline = root.GetProperty("timeline");
        Assert.Equal(1000, timeline.GetProperty("startTime").GetInt64());
        Assert.Equal(10, timeline.GetProperty("durationDelta").GetInt64());
        Assert.Equal([1L, 0, 2], timeline.GetProperty("samples").EnumerateArray().Select(e => e.GetInt64()));
        Assert.False(root.TryGetProperty("leftTicks", out _));
    }

    [Theory]
    [InlineData("collapsed/inferno/collapse-sample/results/sample-default.txt")]
    [InlineData("collapsed/speedscope/recursion.txt")] // recursion: total counted once per stack
    [InlineData("collapsed/speedscope/alternating.txt")]
    public void FunctionTotalsMatchAPlainReading(string relative)
    {
        string path = Path.Combine(SharedData.TestData, relative);
        var self = new Dictionary<string, ulong>(StringComparer.Ordinal);
        var total = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (var (stack, count) in FoldedLines.Read(path))
        {
            string[] frames = stack.Split(';');
            self[frames[^1]] = self.GetValueOrDefault(frames[^1]) + count;
            foreach (string f in frames.Distinct()) total[f] = total.GetValueOrDefault(f) + count; // once per stack
        }
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        using (var file = File.OpenRead(path)) FoldedFormat.Import(file, tree);
        var computed = FunctionTotals.Compute(tree).ToDictionary(f => f.Name);
        Assert.Equal(total.Keys.Order(StringComparer.Ordinal), computed.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, f) in computed)
        {
            Assert.Equal(self.GetValueOrDefault(name), f.Self);
            Assert.Equal(total[name], f.Total);
        }
        var top = FunctionTotals.Top(tree, 5, TopBy.Self);
        Assert.Equal(total.Keys.OrderByDescending(k => self.GetValueOrDefault(k)).ThenBy(k => k, StringComparer.Ordinal).Take(5), top.Select(f => f.Name));
    }
}
