namespace ProfileArena.Workloads;

/// <summary>The engines a workload can feed. <see cref="WorkloadEngines"/> names them (the one place the
/// command-line names live) and creates them. The leaky ones exist only for the verification tests: they keep
/// managed objects the arena must not need, so the tests can prove the heap check catches that.</summary>
public enum WorkloadEngine
{
    /// <summary>The native-arena <see cref="TreeStore"/>, one store for all trees.</summary>
    Arena,

    /// <summary>The object-per-node <see cref="ProfileArena.Baseline.BaselineTree"/>.</summary>
    Baseline,

    /// <summary>Test only: the arena plus two managed objects kept per tree.</summary>
    ArenaLeakPerTree,

    /// <summary>Test only: the arena plus one managed object kept per node.</summary>
    ArenaLeakPerNode,
}

/// <summary>Names, parsing and creation of <see cref="WorkloadEngine"/>s: every tool that takes an engine name
/// (the CLI, the verify-gc child, the benchmarks' loop) goes through here.</summary>
public static class WorkloadEngines
{
    /// <summary>Every engine, in declaration order.</summary>
    public static IReadOnlyList<WorkloadEngine> All { get; } = Enum.GetValues<WorkloadEngine>();

    /// <summary>The engines the take-home comparison runs side by side (the leaky ones are test-only).</summary>
    public static IReadOnlyList<WorkloadEngine> Compared { get; } = [WorkloadEngine.Arena, WorkloadEngine.Baseline];

    /// <summary>The engine's command-line name: <c>arena</c>, <c>baseline</c>, <c>arena-leak-per-tree</c>, <c>arena-leak-per-node</c>.</summary>
    public static string Name(WorkloadEngine engine) => engine switch
    {
        WorkloadEngine.Arena => "arena",
        WorkloadEngine.Baseline => "baseline",
        WorkloadEngine.ArenaLeakPerTree => "arena-leak-per-tree",
        WorkloadEngine.ArenaLeakPerNode => "arena-leak-per-node",
        _ => throw new ArgumentOutOfRangeException(nameof(engine), engine, "not a WorkloadEngine"),
    };

    /// <summary>The engine among <paramref name="allowed"/> (all by default) whose <see cref="Name"/> is exactly
    /// <paramref name="name"/> (ordinal, lower case).</summary>
    public static bool TryParse(string? name, out WorkloadEngine engine, IReadOnlyList<WorkloadEngine>? allowed = null)
    {
        foreach (WorkloadEngine candidate in allowed ?? All)
        {
            if (string.Equals(Name(candidate), name, StringComparison.Ordinal))
            {
                engine = candidate;
                return true;
            }
        }
        engine = default;
        return false;
    }

    /// <summary>Like <see cref="TryParse"/>, but an unknown name throws.</summary>
    /// <exception cref="FormatException">The name is not one of <paramref name="allowed"/>; the message lists the valid names.</exception>
    public static WorkloadEngine Parse(string? name, IReadOnlyList<WorkloadEngine>? allowed = null) =>
        TryParse(name, out WorkloadEngine engine, allowed)
            ? engine
            : throw new FormatException(UnknownName(name, (allowed ?? All).Select(Name)));

    /// <summary>"unknown engine 'x' (valid: a, b)": the one wording of a bad engine name, for any list of valid names.</summary>
    public static string UnknownName(string? name, IEnumerable<string> valid) =>
        $"unknown engine '{name}' (valid: {string.Join(", ", valid)})";

    /// <summary>An empty engine of the given kind.</summary>
    /// <param name="engine">Which engine.</param>
    /// <param name="treeCapacity">Trees the engine will hold (a hint: its tree list is sized once, so a caller that
    /// counts live objects between trees sees no list growth).</param>
    public static IWorkloadEngine Create(WorkloadEngine engine, int treeCapacity = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(treeCapacity);
        return engine switch
        {
            WorkloadEngine.Arena => new ArenaWorkloadEngine(treeCapacity),
            WorkloadEngine.Baseline => new BaselineWorkloadEngine(treeCapacity),
            WorkloadEngine.ArenaLeakPerTree => new LeakingWorkloadEngine(engine, new ArenaWorkloadEngine(treeCapacity), perNode: false, treeCapacity),
            WorkloadEngine.ArenaLeakPerNode => new LeakingWorkloadEngine(engine, new ArenaWorkloadEngine(treeCapacity), perNode: true, treeCapacity),
            _ => throw new ArgumentOutOfRangeException(nameof(engine), engine, "not a WorkloadEngine"),
        };
    }

    /// <summary>Runs every code path of <paramref name="engine"/> once on a throwaway engine of the same kind (JIT,
    /// static constructors, the generator's key buffer), so a caller that measures afterwards does not count them.</summary>
    /// <remarks>The throwaway tree has the real <paramref name="depth"/>: deep keys take code paths (pooled buffers,
    /// table growth, and the runtime objects those create once per process) that shallow ones never reach.</remarks>
    public static void WarmUp(WorkloadEngine engine, int depth)
    {
        using IWorkloadEngine scratch = Create(engine, treeCapacity: 2);
        var rng = new SplitMix64(1);
        int deep = scratch.BuildTakeHome(ref rng, 20, depth);
        int small = scratch.AddTree();
        scratch.Insert(small, "foo;bar;baz"u8, 100);
        _ = scratch.NodeCount(deep) + scratch.Nodes + scratch.NativeBytes;
        _ = scratch.Total(small) + scratch.TotalsSum;
        scratch.BuildAlone("foo;bar;baz"u8, 100);
    }
}
