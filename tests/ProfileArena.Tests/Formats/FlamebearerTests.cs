using System.Text.Json;
using ProfileArena.Formats;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Formats;

public class FlamebearerTests
{
    private sealed record DecodedNode(int Level, ulong X, ulong Total, ulong Self, string Name);

    /// <summary>Reads the JSON back: undoes the delta encoding, and names each node by its path, found by
    /// x containment in the level above.</summary>
    private static (List<DecodedNode> Nodes, Dictionary<DecodedNode, string> Paths, JsonElement Root) Decode(byte[] json)
    {
        JsonElement root = JsonDocument.Parse(json).RootElement;
        JsonElement fb = root.GetProperty("flamebearer");
        string[] names = fb.GetProperty("names").EnumerateArray().Select(n => n.GetString()!).ToArray();
        var nodes = new List<DecodedNode>();
        var levels = new List<List<DecodedNode>>();
        int level = 0;
        foreach (JsonElement l in fb.GetProperty("levels").EnumerateArray())
        {
            ulong[] v = l.EnumerateArray().Select(e => e.GetUInt64()).ToArray();
            Assert.Equal(0, v.Length % 4);
            var row = new List<DecodedNode>();
            ulong prevEnd = 0;
            for (int i = 0; i < v.Length; i += 4)
            {
                ulong x = prevEnd + v[i];
                row.Add(new DecodedNode(level, x, v[i + 1], v[i + 2], names[v[i + 3]]));
                prevEnd = x + v[i + 1];
            }
            levels.Add(row);
            nodes.AddRange(row);
            level++;
        }
        var paths = new Dictionary<DecodedNode, string>();
        foreach (DecodedNode n in nodes.Where(n => n.Level > 0 && n.Total > 0)) // zero-width nodes have no unique parent by x
        {
            DecodedNode parent = levels[n.Level - 1].Last(p => p.X <= n.X && (n.Total == 0 ? n.X <= p.X + p.Total : n.X < p.X + p.Total));
            Assert.True(n.X + n.Total <= parent.X + parent.Total);
            Assert.True(n.X >= parent.X + parent.Self); // self first, then the children
            paths[n] = parent.Level == 0 ? n.Name : paths[parent] + ";" + n.Name;
        }
        return (nodes, paths, root);
    }

    private static ProfileTree ImportFile(TreeStore store, string relative)
    {
        ProfileTree tree = store.CreateTree();
        using FileStream file = File.OpenRead(Path.Combine(SharedData.TestData, relative));
        if (relative.StartsWith("pprof/", StringComparison.Ordinal)) PprofFormat.Import(file, tree);
        else FoldedFormat.Import(file, tree);
        return tree;
    }

    [Theory]
    [InlineData("collapsed/FlameGraph/perf-vertx-stacks-01-collapsed-all.txt")]
    [InlineData("collapsed/inferno/collapse-ghcprof/results/ticks.txt")] // zero totals
    [InlineData("pprof/go-torch/pprof.1.pb.gz")]
    public void LevelsDecodeBackToTheTree(string relative)
    {
        using var store = new TreeStore();
        ProfileTree tree = ImportFile(store, relative);
        var output = new MemoryStream();
        FlamebearerFormat.Export(tree, output, new FlamebearerOptions { MaxNodes = 0 });
        var (nodes, paths, root) = Decode(output.ToArray());
        Assert.Equal(1, root.GetProperty("version").GetInt32());
        Assert.Equal("single", root.GetProperty("metadata").GetProperty("format").GetString());
        JsonElement fb = root.GetProperty("flamebearer");
        Assert.Equal(tree.Total, fb.GetProperty("numTicks").GetUInt64());
        var snapshot = TreeSnapshot.Of(tree);
        Assert.Equal(snapshot.Max(n => n.Self), fb.GetProperty("maxSelf").GetUInt64());
        Assert.Equal(new DecodedNode(0, 0, tree.Total, 0, "total"), nodes[0]);
        var decoded = nodes.Skip(1).Where(n => n.Total > 0).Select(n => new VisitedNode(paths[n], n.Self, n.Total)).OrderBy(n => n.Stack, StringComparer.Ordinal);
        Assert.Equal(snapshot.Where(n => n.Total > 0).OrderBy(n => n.Stack, StringComparer.Ordinal), decoded);
        Assert.Equal(snapshot.Count(n => n.Total == 0), nodes.Count(n => n.Total == 0));
    }

    [Fact]
    public void MaxNodesFoldsSmallNodesIntoOther()
    {
        using var store = new TreeStore();
        ProfileTree tree = ImportFile(store, "pprof/google-pprof/large.cpu");
        var output = new MemoryStream();
        FlamebearerFormat.Export(tree, output, new FlamebearerOptions { MaxNodes = 100 });
        var (nodes, paths, _) = Decode(output.ToArray());
        // As in pyroscope, the threshold is the 100th largest total; nodes tied with it are all kept.
        var totals = TreeSnapshot.Of(tree).Select(n => n.Total).OrderDescending().ToList();
        ulong threshold = totals[99];
        var kept = nodes.Where(n => n.Name != "other" && n.Level > 0).ToList();
        Assert.All(kept, n => Assert.True(n.Total >= threshold));
        Assert.InRange(kept.Count, 1, totals.Count(t => t >= threshold));
        Assert.Contains(nodes, n => n.Name == "other");
        // Every level still adds up: self + children's totals = total, for every kept node.
        foreach (DecodedNode parent in nodes.Where(n => n.Name != "other"))
        {
            ulong children = nodes.Where(c => c.Level == parent.Level + 1 && c.X >= parent.X && c.X < parent.X + parent.Total).Aggregate(0UL, (s, c) => s + c.Total);
            Assert.Equal(parent.Total, parent.Self + children);
        }
        // Kept nodes carry their exact values.
        var byStack = TreeSnapshot.Of(tree).ToDictionary(n => n.Stack);
        foreach (DecodedNode n in nodes.Where(n => n.Level > 0 && n.Name != "other" && !paths[n].Contains("other")))
            Assert.Equal((byStack[paths[n]].Self, byStack[paths[n]].Total), (n.Self, n.Total));
    }

    /// <summary>The server's /render folds the merged tree with <see cref="ProfileTree.Truncate"/> first and then
    /// exports with no cut (so the export walks only the kept nodes). That must give byte for byte the JSON an
    /// export with MaxNodes = K gives for the untruncated tree: same cut, same "other" folding, same order.</summary>
    [Theory]
    [InlineData("pprof/google-pprof/large.cpu", 1024)]
    [InlineData("pprof/google-pprof/large.cpu", 1)]
    [InlineData("collapsed/FlameGraph/perf-vertx-stacks-01-collapsed-all.txt", 100)]
    [InlineData("collapsed/inferno/collapse-ghcprof/results/ticks.txt", 10)] // zero totals
    public void TruncateThenExportWithoutCutEqualsExportWithCut(string relative, int maxNodes)
    {
        using var store = new TreeStore();
        ProfileTree tree = ImportFile(store, relative);
        AssertTruncatedExportEqual(tree, maxNodes);
    }

    [Fact]
    public void TruncateThenExportWithoutCutEqualsExportWithCutOnRandomTrees()
    {
        var random = new Random(12);
        string[] names = ["a", "b", "c", "other", "d", "e"]; // "other" inside the input too: it is folded, kept or both
        for (int round = 0; round < 300; round++)
        {
            using var store = new TreeStore();
            ProfileTree tree = store.CreateTree();
            int stacks = random.Next(1, 60);
            for (int i = 0; i < stacks; i++)
            {
                int depth = random.Next(1, 6);
                string stack = string.Join(';', Enumerable.Range(0, depth).Select(_ => names[random.Next(names.Length)]));
                tree.Insert(System.Text.Encoding.UTF8.GetBytes(stack), (ulong)random.Next(0, 4)); // small values: many ties at the cut
            }
            AssertTruncatedExportEqual(tree, random.Next(1, 30));
        }
    }

    private static void AssertTruncatedExportEqual(ProfileTree tree, int maxNodes)
    {
        var options = new FlamebearerOptions { MaxNodes = maxNodes, Name = "app.cpu" };
        var expected = new MemoryStream();
        FlamebearerFormat.Export(tree, expected, options);
        ProfileTree copy = tree.Store.CreateTree();
        copy.MergeFrom(tree);
        if (copy.NodeCount - 1 > maxNodes) copy.Truncate(maxNodes);
        var actual = new MemoryStream();
        FlamebearerFormat.Export(copy, actual, new FlamebearerOptions { MaxNodes = 0, Name = "app.cpu" });
        Assert.Equal(System.Text.Encoding.UTF8.GetString(expected.ToArray()), System.Text.Encoding.UTF8.GetString(actual.ToArray()));
    }
}
