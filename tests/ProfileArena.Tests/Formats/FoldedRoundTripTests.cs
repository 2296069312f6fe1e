using System.Text;
using ProfileArena.Formats;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Formats;

/// <summary>Property: import ∘ export is the identity on trees whose every leaf carries a value.</summary>
public class FoldedRoundTripTests
{
    // Names from an alphabet meant to trip the parser: spaces, tabs, digits, dots, '#', '/', CR, multi-byte
    // UTF-8, raw non-UTF-8 bytes, empty names. Excluded, as the format cannot express them: '\n' anywhere,
    // and a first frame starting with '#' or "//" (such a line is a comment).
    private static readonly byte[][] Pieces =
        [.. new[] { "a", "b", "main", " ", "\t", "1", "42", ".", "5.0", "#", "/", "//", "\r", "é", "日本", "x y", "[k]", "<T>" }.Select(Encoding.UTF8.GetBytes), [0xFF], [0x80, 0x80]];

    [Fact]
    public void ImportOfExportIsTheIdentity()
    {
        var rng = new SplitMix64(20240611);
        for (int round = 0; round < 200; round++)
        {
            using var store = new TreeStore();
            ProfileTree tree = store.CreateTree();
            int inserts = 1 + (int)(rng.NextUInt64() % 40);
            for (int i = 0; i < inserts; i++)
            {
                var key = new List<byte>();
                int depth = 1 + (int)(rng.NextUInt64() % 6);
                for (int d = 0; d < depth; d++)
                {
                    if (d > 0) key.Add((byte)';');
                    int parts = (int)(rng.NextUInt64() % 3);
                    for (int p = 0; p < parts; p++) key.AddRange(Pieces[rng.NextUInt64() % (ulong)Pieces.Length]);
                }
                if (key.Count > 0 && (key[0] == '#' || key[0] == '/')) key.Insert(0, (byte)'f');
                ulong value = rng.NextUInt64() % 5 == 0 ? rng.NextUInt64() >> 20 : 1 + rng.NextUInt64() % 100;
                tree.Insert(key.ToArray(), value);
            }
            var output = new MemoryStream();
            FoldedFormat.Export(tree, output);
            ProfileTree again = store.CreateTree();
            output.Position = 0;
            FoldedFormat.Import(output, again, new FoldedImportOptions { TwoCountLines = TwoCountLinePolicy.KeepAsFrameText });
            var expected = TreeSnapshot.Of(tree);
            var actual = TreeSnapshot.Of(again);
            for (int i = 0; i < Math.Min(expected.Count, actual.Count); i++)
                if (expected[i] != actual[i]) Assert.Fail($"round {round}, node {i}: expected {expected[i]}, got {actual[i]}");
            Assert.Equal(expected.Count, actual.Count);
        }
    }

    [Fact]
    public void ExportRefusesNewlinesInNames()
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        tree.Insert("ok", 1);
        tree.Insert("x;a\nb;c", 1);
        var output = new MemoryStream();
        var e = Assert.Throws<ProfileExportException>(() => FoldedFormat.Export(tree, output));
        Assert.Contains("depth 2", e.Message);
        Assert.Equal(0, output.Length); // checked before the first line
        tree.Clear();
        tree.Insert("y;a\nb", 0); // a path with no value is not written: no error
        tree.Insert("y", 1);
        FoldedFormat.Export(tree, output);
        Assert.Equal("y 1\n", Encoding.UTF8.GetString(output.ToArray()));
    }

    [Fact]
    public void ExportSkipsNodesWithoutSelf()
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        tree.Insert("a;b", 2);
        tree.Insert("a;c", 0);
        var output = new MemoryStream();
        Assert.Equal(1, FoldedFormat.Export(tree, output));
        Assert.Equal("a;b 2\n", Encoding.UTF8.GetString(output.ToArray()));
    }
}
