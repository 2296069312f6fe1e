using System.Diagnostics;
using ProfileArena;

/// <summary>
/// `--shapes N`: every engine operation on hostile shapes of N and 10·N nodes (a deep chain, a wide
/// fan, a chain of long names), printing each time and the 10N/N ratio: ≈ 10 is linear, ≈ 12 is
/// N log N, 100 would be quadratic (issue 14: Top on a 100,000-deep chain took 53 s).
/// </summary>
internal static class DeepShapes
{
    public static void Run(int n)
    {
        var shapes = new (string Name, Func<int, TreeStore> Build)[]
        {
            ("deep chain", size => Store(t => t.Insert(string.Join(';', Enumerable.Repeat("A", size)), 1))),
            ("wide fan", size => Store(t => { for (int i = 0; i < size; i++) t.Insert($"root;f{i}", 1); })),
            ("long names", size => Store(t => { for (int i = 0; i < size / 100; i++) t.Insert(string.Join(';', Enumerable.Range(0, 100).Select(d => new string((char)('a' + d % 26), 100) + i)), 1); })),
        };
        var ops = new (string Name, Action<TreeStore, ProfileTree> Op)[]
        {
            ("Iterate", (_, t) => { long bytes = 0; t.Iterate((s, _, _) => bytes += s.Length); }),
            ("Top(10, Total)", (_, t) => t.Top(10, TopBy.Total)),
            ("Top(10, Self)", (_, t) => t.Top(10, TopBy.Self)),
            ("Clone", (s, t) => s.Remove(t.Clone())),
            ("MergeFrom (into a copy)", (s, t) => { var c = s.CreateTree(); c.MergeFrom(t); c.MergeFrom(t); s.Remove(c); }),
            ("Truncate(100) of a clone", (s, t) => { var c = t.Clone(); c.Truncate(100); s.Remove(c); }),
            ("Save + Load", (s, _) => { var ms = new MemoryStream(); s.Save(ms); ms.Position = 0; TreeStore.Load(ms).Dispose(); }),
        };
        Console.WriteLine($"shapes: N = {n:N0} and 10·N; times are medians of 3 (ratio ≈ 10 linear, ≈ 12 N log N, 100 quadratic)");
        Console.WriteLine($"| shape | operation | N | 10·N | ratio |");
        Console.WriteLine($"|---|---|---:|---:|---:|");
        foreach (var (shape, build) in shapes)
        {
            using TreeStore small = build(n), large = build(10 * n);
            foreach (var (name, op) in ops)
            {
                double a = Median(small, op), b = Median(large, op);
                Console.WriteLine($"| {shape} | {name} | {a * 1000:F1} ms | {b * 1000:F1} ms | {b / a:F1} |");
            }
        }
    }

    private static TreeStore Store(Action<ProfileTree> fill)
    {
        var store = new TreeStore();
        fill(store.CreateTree());
        return store;
    }

    private static double Median(TreeStore store, Action<TreeStore, ProfileTree> op)
    {
        ProfileTree tree = store.GetTree(0);
        op(store, tree); // warm-up
        var times = new List<double>();
        for (int i = 0; i < 3; i++)
        {
            var sw = Stopwatch.StartNew();
            op(store, tree);
            times.Add(sw.Elapsed.TotalSeconds);
        }
        times.Sort();
        return times[1];
    }
}
