using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using ProfileArena.Cli.Measurement;
using ProfileArena.Cli.TakeHomeRun;
using ProfileArena.Workloads;

namespace ProfileArena.Cli.Commands;

/// <summary>
/// Runs the take-home workload for ONE engine in this process and prints one JSON line per result
/// on stdout (the single-tree cost, then one per step); progress goes to stderr. A separate process
/// per engine keeps GC counters, heap size and peak RSS from mixing between engines.
/// </summary>
internal static class TakeHomeWorkerCommand
{
    public const string CommandName = "takehome-worker";

    public static Command Create(CliIo io)
    {
        Option<WorkloadEngine> engineOption = CliOptions.OneEngine("the engine to run");
        var shape = new TakeHomeShapeOptions();
        // Listed, not Hidden: System.CommandLine prints no help for a hidden command, and --help must not start a run.
        var command = new Command(CommandName, "(internal, started by takehome) one engine's take-home run, one JSON line per result on stdout, progress on stderr");
        command.Options.Add(engineOption);
        shape.AddTo(command);
        command.SetAction(r => Run(io, r.GetValue(engineOption), shape.Read(r)));
        return command;
    }

    private static int Run(CliIo io, WorkloadEngine kind, TakeHomeShape shape)
    {
        using IWorkloadEngine engine = WorkloadEngines.Create(kind, shape.Plan().Sum(step => step.Trees));
        Emit(io.Out, new WorkerLine { Single = MeasureSingleTree(engine) });

        // One generator for the whole run, like the Go program: step 11 continues step 10's stream.
        var rng = new SplitMix64(SplitMix64.TakeHomeSeed);
        long nodesAlive = 0;
        int treesAlive = 0;
        foreach (StepShape step in shape.Plan())
        {
            StepResult result = RunStep(io.Err, engine, step, ref rng, ref nodesAlive, ref treesAlive);
            Emit(io.Out, new WorkerLine { Step = result });
        }
        return ExitCodes.Ok;
    }

    /// <summary>What one <c>foo;bar;baz</c> = 100 tree costs, built in isolation (for the arena: a store of its own).</summary>
    private static SingleTreeCost MeasureSingleTree(IWorkloadEngine engine)
    {
        engine.BuildAlone("foo;bar;baz"u8, 100); // warm-up: JIT and static constructors must not count as the tree's cost
        long before = GC.GetAllocatedBytesForCurrentThread();
        (long nodes, long nativeBytes) = engine.BuildAlone("foo;bar;baz"u8, 100);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        return new SingleTreeCost { ManagedAllocatedBytes = allocated, NativeBytes = nativeBytes, Nodes = nodes };
    }

    private static StepResult RunStep(TextWriter err, IWorkloadEngine engine, StepShape shape,
        ref SplitMix64 rng, ref long nodesAlive, ref int treesAlive)
    {
        string engineName = WorkloadEngines.Name(engine.Kind);
        long expectedNodes = TakeHome.NodesPerTree(shape.Width, shape.Depth);
        var progress = new ProgressReporter(err, $"[{engineName}] step {shape.Label}", shape.Trees, ProgressUnit.Trees);

        int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
        TimeSpan pause = GC.GetTotalPauseDuration();
        long nodesBuilt = 0;
        ulong totalsSum = 0;

        var build = Stopwatch.StartNew();
        for (int i = 0; i < shape.Trees; i++)
        {
            int tree = engine.BuildTakeHome(ref rng, shape.Width, shape.Depth);
            long nodes = engine.NodeCount(tree);
            ulong total = engine.Total(tree);
            if (nodes != expectedNodes)
                err.WriteLine($"[{engineName}] warning: tree {i} has {nodes} nodes, expected {expectedNodes}");
            nodesBuilt += nodes;
            totalsSum += total;
            progress.Report(i + 1);
        }
        build.Stop();
        progress.Done();

        // Counters are read before the forced collection so they describe the build alone.
        int dGen0 = GC.CollectionCount(0) - gen0, dGen1 = GC.CollectionCount(1) - gen1, dGen2 = GC.CollectionCount(2) - gen2;
        TimeSpan dPause = GC.GetTotalPauseDuration() - pause;

        // What a full GC costs while every tree is alive: the price the object-per-node design pays forever.
        // Three in a row: the first also compacts what the build left behind; the median is what every
        // later full collection costs. On a shared machine a single wall-clock figure can include a
        // descheduling, which the median filters out.
        var fulls = new double[3];
        for (int i = 0; i < fulls.Length; i++)
        {
            var full = Stopwatch.StartNew();
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            fulls[i] = full.Elapsed.TotalSeconds;
        }
        double firstFull = fulls[0];
        Array.Sort(fulls);

        nodesAlive += nodesBuilt;
        treesAlive += shape.Trees;
        return new StepResult
        {
            Label = shape.Label,
            Trees = shape.Trees,
            Width = shape.Width,
            Depth = shape.Depth,
            NodesBuilt = nodesBuilt,
            NodesAlive = nodesAlive,
            TreesAlive = treesAlive,
            TotalsSum = totalsSum,
            BuildSeconds = build.Elapsed.TotalSeconds,
            Gen0Collections = dGen0,
            Gen1Collections = dGen1,
            Gen2Collections = dGen2,
            GcPauseSeconds = dPause.TotalSeconds,
            FullCollectionSeconds = firstFull,
            FullCollectionMedianSeconds = fulls[1],
            ManagedHeapBytes = GC.GetTotalMemory(forceFullCollection: false),
            NativeBytes = engine.NativeBytes,
            PeakRssBytes = ProcessMemory.PeakRssBytes(),
        };
    }

    private static void Emit(TextWriter output, WorkerLine line)
    {
        output.WriteLine(JsonSerializer.Serialize(line, WorkerJson.Default.WorkerLine));
        output.Flush();
    }
}
