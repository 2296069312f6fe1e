using System.Diagnostics;
using ProfileArena.Baseline;
using ProfileArena.Workloads;

namespace ProfileArena.Benchmarks.Support;

/// <summary>
/// <c>--loop WHAT [count]</c>: runs one workload in a plain loop, for <c>perf record</c> or counters
/// (see perf/README.md). WHAT = arena | floor | baseline (take-home 200 × 500 trees, one fresh store per
/// tree), real (real-shape insert), iterate / iterate-real (arena Light walks of the take-home / real tree).
/// </summary>
public static class Loop
{
    public static int Run(string what, int count)
    {
        const int width = 200, depth = 500;
        var watch = Stopwatch.StartNew();
        ulong check = 0;
        var previous = new byte[4 + 81 * depth + 64];
        for (int n = 0; n < count; n++)
        {
            var rng = new SplitMix64(SplitMix64.TakeHomeSeed);
            switch (what)
            {
                case "arena":
                {
                    using var store = new TreeStore();
                    var sink = new ArenaSink(store.CreateTree());
                    TakeHome.GenerateTree(ref rng, width, depth, ref sink);
                    check += (ulong)store.NodeCount;
                    break;
                }
                case "floor":
                {
                    var sink = new FloorSink(previous);
                    TakeHome.GenerateTree(ref rng, width, depth, ref sink);
                    check += sink.Checksum;
                    break;
                }
                case "baseline":
                {
                    var tree = new BaselineTree();
                    var sink = new BaselineSink(tree);
                    TakeHome.GenerateTree(ref rng, width, depth, ref sink);
                    check += (ulong)tree.NodeCount;
                    break;
                }
                case "real":
                {
                    CollapsedStacks stacks = CollapsedStacks.All;
                    using var store = new TreeStore();
                    for (int t = 0; t < Shapes.RealTrees; t++)
                    {
                        ProfileTree tree = store.CreateTree();
                        for (int r = 0; r < Shapes.RealReplays; r++)
                            for (int i = 0; i < stacks.Count; i++)
                                tree.Insert(stacks.Key(i), stacks.Value(i));
                    }
                    check += (ulong)store.NodeCount;
                    break;
                }
                case "iterate":
                case "iterate-real":
                {
                    using var store = new TreeStore();
                    ProfileTree tree = store.CreateTree();
                    if (what == "iterate")
                    {
                        var sink = new ArenaSink(tree);
                        TakeHome.GenerateTree(ref rng, width, depth, ref sink);
                    }
                    else
                    {
                        CollapsedStacks stacks = CollapsedStacks.All;
                        for (int i = 0; i < stacks.Count; i++) tree.Insert(stacks.Key(i), stacks.Value(i));
                    }
                    int walks = what == "iterate" ? 200 : 2000;
                    var clock = Stopwatch.StartNew();
                    for (int k = 0; k < walks; k++)
                    {
                        var visitor = new LightVisitor();
                        tree.Iterate(ref visitor);
                        check += visitor.Acc;
                    }
                    Console.WriteLine($"{what}: {clock.Elapsed.TotalMicroseconds / walks:F0} us per Light walk of {tree.NodeCount:N0} nodes");
                    break;
                }
                default:
                    Console.Error.WriteLine("--loop WHAT [count]: WHAT = arena | floor | baseline | real | iterate | iterate-real");
                    return 2;
            }
        }
        Console.WriteLine($"{what} × {count}: {watch.Elapsed.TotalMilliseconds / count:F1} ms per op (check {check})");
        return 0;
    }
}
