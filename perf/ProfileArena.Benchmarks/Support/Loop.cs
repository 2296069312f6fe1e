using System.Diagnostics;
using ProfileArena.Workloads;

namespace ProfileArena.Benchmarks.Support;

/// <summary>
/// <c>--loop WHAT [count]</c>: runs one workload in a plain loop, for <c>perf record</c> or counters
/// (see perf/README.md). WHAT = an engine's name (<see cref="WorkloadEngines.Compared"/>: arena | baseline;
/// take-home 200 × 500 trees, one fresh engine per tree, built through <see cref="IWorkloadEngine.BuildTakeHome"/>,
/// whose insert loop is compiled per engine), floor (the same keys into <see cref="FloorSink"/>), real
/// (real-shape insert), iterate / iterate-real (arena Light walks of the take-home / real tree).
/// </summary>
public static class Loop
{
    private static readonly string[] Others = ["floor", "real", "iterate", "iterate-real"];

    public static int Run(string what, int count)
    {
        const int width = 200, depth = 500;
        bool isEngine = WorkloadEngines.TryParse(what, out WorkloadEngine engine, WorkloadEngines.Compared);
        if (!isEngine && !Others.Contains(what))
        {
            Console.Error.WriteLine($"--loop WHAT [count]: WHAT = {string.Join(" | ", WorkloadEngines.Compared.Select(WorkloadEngines.Name).Concat(Others))}");
            return 2;
        }
        var watch = Stopwatch.StartNew();
        ulong check = 0;
        var previous = new byte[4 + 81 * depth + 64];
        for (int n = 0; n < count; n++)
        {
            var rng = new SplitMix64(SplitMix64.TakeHomeSeed);
            if (isEngine)
            {
                using IWorkloadEngine trees = WorkloadEngines.Create(engine, treeCapacity: 1);
                trees.BuildTakeHome(ref rng, width, depth);
                check += (ulong)trees.Nodes;
                continue;
            }
            switch (what)
            {
                case "floor":
                {
                    var sink = new FloorSink(previous);
                    TakeHome.GenerateTree(ref rng, width, depth, ref sink);
                    check += sink.Checksum;
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
            }
        }
        Console.WriteLine($"{what} × {count}: {watch.Elapsed.TotalMilliseconds / count:F1} ms per op (check {check})");
        return 0;
    }
}
