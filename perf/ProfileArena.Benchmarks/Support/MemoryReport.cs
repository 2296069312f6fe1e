using System.Diagnostics;
using ProfileArena.Workloads;

namespace ProfileArena.Benchmarks.Support;

/// <summary>Native bytes per node (<c>--memory</c>): the take-home step (trees of 200 × 500 in one store) and the real-shape store.</summary>
public static class MemoryReport
{
    public static int Run(int trees)
    {
        const int width = 200, depth = 500;
        var watch = Stopwatch.StartNew();
        using (var store = new TreeStore())
        {
            var rng = new SplitMix64(SplitMix64.TakeHomeSeed);
            for (int t = 0; t < trees; t++)
            {
                var sink = new ArenaSink(store.CreateTree());
                TakeHome.GenerateTree(ref rng, width, depth, ref sink);
                if (t == 0 || t + 1 == trees)
                    Console.WriteLine($"take-home {width}x{depth}, {t + 1} tree(s): {store.NativeBytes:N0} native bytes / {store.NodeCount:N0} nodes = {(double)store.NativeBytes / store.NodeCount:F1} B/node ({store.SymbolCount:N0} symbols, {watch.Elapsed.TotalSeconds:F1} s)");
            }
        }

        CollapsedStacks stacks = CollapsedStacks.All;
        foreach (int realTrees in new[] { 1, Shapes.RealTrees })
        {
            using var store = new TreeStore();
            for (int t = 0; t < realTrees; t++)
            {
                ProfileTree tree = store.CreateTree();
                for (int r = 0; r < Shapes.RealReplays; r++)
                    for (int i = 0; i < stacks.Count; i++)
                        tree.Insert(stacks.Key(i), stacks.Value(i));
            }
            Console.WriteLine($"real shape ({stacks.Files} files, {stacks.Count:N0} stacks), {realTrees} tree(s): {store.NativeBytes:N0} native bytes / {store.NodeCount:N0} nodes = {(double)store.NativeBytes / store.NodeCount:F1} B/node ({store.SymbolCount:N0} symbols)");
        }
        return 0;
    }
}
