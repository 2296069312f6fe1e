using System.Text;

namespace ProfileArena.Tests.Engine;

/// <summary><see cref="TreeStore.SymbolBytes"/> against a plain set of the names inserted: what a server shard compares
/// to decide when to compact (names outlive removed trees; a copy into a fresh store keeps only the live ones).</summary>
public class SymbolBytesTests
{
    private static string RandomStack(Random random, int vocabulary) =>
        string.Join(';', Enumerable.Range(0, random.Next(1, 6)).Select(_ => "f" + random.Next(vocabulary) + new string('x', random.Next(0, 40)) + (random.Next(8) == 0 ? "ü" : "")));

    private static long Bytes(IEnumerable<string> names) => names.Distinct(StringComparer.Ordinal).Sum(n => (long)Encoding.UTF8.GetByteCount(n));

    [Fact]
    public void SymbolBytesIsTheSumOfDistinctNamesKeptAfterRemovalAndOnlyTheLiveOnesAfterACopy()
    {
        var random = new Random(42);
        using var store = new TreeStore();
        Assert.Equal(0, store.SymbolBytes); // only the empty name
        var perTree = new List<(ProfileTree Tree, HashSet<string> Names)>();
        var all = new HashSet<string>(StringComparer.Ordinal);
        for (int t = 0; t < 6; t++)
        {
            ProfileTree tree = store.CreateTree();
            var names = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < 200; i++)
            {
                string stack = RandomStack(random, 300);
                tree.Insert(stack, (ulong)random.Next(1, 100));
                names.UnionWith(stack.Split(';'));
            }
            all.UnionWith(names);
            perTree.Add((tree, names));
            Assert.Equal(Bytes(all), store.SymbolBytes);
        }

        // Removing trees frees their nodes, not their names.
        long before = store.SymbolBytes, native = store.NativeBytes;
        foreach (var (tree, _) in perTree.Take(4)) store.Remove(tree);
        Assert.True(store.NativeBytes < native);
        Assert.Equal(before, store.SymbolBytes);

        // A snapshot keeps them too.
        using (var stream = new MemoryStream())
        {
            store.Save(stream);
            stream.Position = 0;
            using TreeStore loaded = TreeStore.Load(stream);
            Assert.Equal(before, loaded.SymbolBytes);
        }

        // Copying the live trees into a fresh store interns only the names they use.
        using var fresh = new TreeStore();
        foreach (var (tree, _) in perTree.Skip(4)) fresh.CreateTree().MergeFrom(tree);
        Assert.Equal(Bytes(perTree.Skip(4).SelectMany(p => p.Names)), fresh.SymbolBytes);
        Assert.True(fresh.SymbolBytes < before);

        store.Dispose();
        Assert.Throws<ObjectDisposedException>(() => store.SymbolBytes);
    }
}
