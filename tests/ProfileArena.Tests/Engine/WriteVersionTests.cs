namespace ProfileArena.Tests.Engine;

/// <summary>
/// <see cref="ProfileTree.WriteVersion"/> and <see cref="ProfileTree.Generation"/>, which the server's merge cache
/// relies on: over random operations on a few trees, a tree's version changes exactly when one of its write
/// operations ran (reads, and writes of other trees, leave it), equal versions mean equal contents, and a removed
/// tree's id reused by a later tree comes with another generation and a version never seen before for that id.
/// </summary>
public class WriteVersionTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Version_changes_with_every_write_and_never_repeats_for_a_reused_id(int seed)
    {
        var random = new Random(seed);
        using var store = new TreeStore();
        using var other = new TreeStore();
        ProfileTree source = other.CreateTree();
        source.Insert("main;x", 3);
        var trees = new List<ProfileTree> { store.CreateTree(), store.CreateTree(), store.CreateTree() };
        var seen = new Dictionary<int, HashSet<ulong>>(); // id → versions seen (over every tree that held the id)
        var contents = new Dictionary<(int, uint, ulong), string>(); // (id, generation, version) → contents then
        for (int step = 0; step < 400; step++)
        {
            int i = random.Next(trees.Count);
            ProfileTree tree = trees[i];
            ulong before = tree.WriteVersion;
            bool writes = true;
            switch (random.Next(7))
            {
                case 0: tree.Insert($"main;f{random.Next(5)}", (ulong)random.Next(1, 9)); break;
                case 1: tree.MergeFrom(source); break;
                case 2: tree.MergeFrom(trees[(i + 1) % trees.Count]); break;
                case 3: tree.Truncate(2); break;
                case 4:
                    // Reads: iterate, total, node count, merge from it into another tree.
                    writes = false;
                    _ = tree.Total + (ulong)tree.NodeCount;
                    tree.Iterate((_, _, _) => { });
                    using (var scratch = new TreeStore()) scratch.CreateTree().MergeFrom(tree);
                    break;
                case 5:
                {
                    int id = tree.Id;
                    uint generation = tree.Generation;
                    store.Remove(tree);
                    Assert.Throws<InvalidOperationException>(() => tree.WriteVersion);
                    ProfileTree next = store.CreateTree();
                    trees[i] = next;
                    if (next.Id == id) Assert.NotEqual(generation, next.Generation);
                    Assert.DoesNotContain(next.WriteVersion, seen.GetValueOrDefault(next.Id) ?? []);
                    writes = false;
                    break;
                }
                default: tree.Clear(); break;
            }
            if (writes) Assert.NotEqual(before, trees[i].WriteVersion);
            foreach (ProfileTree t in trees)
            {
                if (!seen.TryGetValue(t.Id, out HashSet<ulong>? versions)) seen[t.Id] = versions = [];
                versions.Add(t.WriteVersion);
                string text = Contents(t);
                var key = (t.Id, t.Generation, t.WriteVersion);
                if (contents.TryGetValue(key, out string? earlier)) Assert.Equal(earlier, text); // same version, same contents
                else contents[key] = text;
            }
        }
    }

    private static string Contents(ProfileTree tree)
    {
        var lines = new List<string>();
        tree.Iterate((stack, self, total) => lines.Add($"{System.Text.Encoding.UTF8.GetString(stack)} {self} {total}"));
        lines.Sort(StringComparer.Ordinal);
        return string.Join("\n", lines);
    }
}
