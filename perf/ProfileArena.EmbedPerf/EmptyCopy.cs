using System.Diagnostics;
using ProfileArena;

/// <summary>
/// <c>--copy K</c>: the merge into an empty tree (a query's first merge, <c>Clone</c>), which the engine does node for
/// node (native-notes.md, "The copy path"). An entry-shaped tree — every real collapsed file of ../shared/testdata
/// inserted under K prefixes "v0;" … (a merged hour of a service: many nodes, fewer names) — is copied 15 times each way:
/// into a tree of a fresh store (names interned too), into a new tree of a store that already has the names, and
/// cloned in its own store; then the clone cut to 1,024 nodes (<c>Truncate</c>, the render's next step). Prints the
/// least time of each (the machine is shared: the least is the code's cost).
/// </summary>
internal static class EmptyCopy
{
    public static void Run(string collapsedDir, int variants)
    {
        using var entryStore = new TreeStore();
        ProfileTree entry = entryStore.CreateTree();
        foreach (string file in Directory.GetFiles(collapsedDir, "*.txt", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            foreach (string line in File.ReadLines(file))
            {
                int space = line.LastIndexOf(' ');
                if (space <= 0 || !ulong.TryParse(line.AsSpan(space + 1), out ulong value)) continue;
                string stack = line[..space];
                for (int k = 0; k < variants; k++) entry.Insert($"v{k};{stack}", value);
            }
        }
        Console.WriteLine($"copy into an empty tree: entry of {entry.NodeCount:N0} nodes, {entryStore.SymbolCount:N0} names ({variants} variants of every collapsed file)");
        double fresh = double.MaxValue, named = double.MaxValue, clone = double.MaxValue, cut = double.MaxValue;
        for (int round = 0; round < 15; round++)
        {
            var watch = Stopwatch.StartNew();
            using (var store = new TreeStore()) store.CreateTree().MergeFrom(entry);
            fresh = Math.Min(fresh, watch.Elapsed.TotalMilliseconds);
            using (var store = new TreeStore())
            {
                store.CreateTree().MergeFrom(entry);
                ProfileTree second = store.CreateTree();
                watch.Restart();
                second.MergeFrom(entry);
                named = Math.Min(named, watch.Elapsed.TotalMilliseconds);
            }
            watch.Restart();
            ProfileTree copy = entry.Clone();
            clone = Math.Min(clone, watch.Elapsed.TotalMilliseconds);
            watch.Restart();
            copy.Truncate(1024);
            cut = Math.Min(cut, watch.Elapsed.TotalMilliseconds);
            entryStore.Remove(copy);
        }
        Console.WriteLine($"least of 15: into a fresh store {fresh:0.00} ms; into a store with the names {named:0.00} ms; clone in its own store {clone:0.00} ms; its cut to 1,024 nodes {cut:0.00} ms");
    }
}
