using ProfileArena.Verification;
using ProfileArena.Workloads;

namespace ProfileArena.Cli.TakeHomeRun;

/// <summary>
/// The take-home report's live-object figures, measured the way verify-gc measures them: a workload child
/// observed over EventPipe, a gcdump-style heap snapshot with the empty store subtracted. Replaces the
/// in-process reflection estimate.
/// </summary>
internal static class HeapCheck
{
    /// <summary>Fills <see cref="EngineRun.HeapSingle"/> (one foo;bar;baz tree) and <see cref="EngineRun.HeapStep"/>
    /// (the plan's first step, all its trees alive). A failure is reported on stderr and leaves them null.</summary>
    public static void Observe(EngineRun run, StepShape firstStep)
    {
        WorkloadEngine engine = run.Engine;
        var runner = new VerificationRunner { Log = Console.Error };
        try
        {
            Console.Error.WriteLine($"[{run.Name}] live objects over EventPipe: one foo;bar;baz tree");
            run.HeapSingle = runner.Run(new WorkloadSpec(engine, 1, 1, 1, [1], WorkloadShape.FooBarBaz)).Last?.AttributableObjects;
            Console.Error.WriteLine($"[{run.Name}] live objects over EventPipe: step {firstStep.Label} (a second child builds it again)");
            run.HeapStep = runner.Run(new WorkloadSpec(engine, firstStep.Trees, firstStep.Width, firstStep.Depth, [])).Last?.AttributableObjects;
        }
        catch (VerificationException e)
        {
            Console.Error.WriteLine($"[{run.Name}] heap snapshot failed during {e.Phase}: {e.Message}");
        }
    }
}
