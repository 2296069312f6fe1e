using System.Globalization;
using ProfileArena.Workloads;

namespace ProfileArena.GcWorkload;

/// <summary>
/// The observed child of <c>verify-gc</c>. It builds trees for one engine and stops at each checkpoint
/// (a number of trees built) until the observer, which reads its stdout, answers on stdin.
/// </summary>
/// <remarks>
/// Protocol, one line each (stdout → observer): <c>ready PID NODES</c> once after the warm-up (answer
/// <c>next</c>); <c>progress TREES NODES</c> after every tree;
/// <c>checkpoint TREES NODES NATIVE_BYTES TOTALS_SUM</c>, then the child blocks reading stdin until
/// <c>next</c> (anything else, or end of input, ends the child with exit code 3: an observer that
/// dies takes its child down at the next checkpoint); <c>done</c> at the end (exit 0). Usage errors
/// exit 2, failures 1; messages go to stderr.
/// Arguments: <c>--engine E --shape takehome|foobarbaz --trees N --width W --depth D --checkpoints 0,1,10</c>.
/// Engines are named by <see cref="WorkloadEngines"/> (<c>arena</c>, <c>baseline</c>, and the test-only
/// <c>arena-leak-per-tree</c> and <c>arena-leak-per-node</c>, which keep managed objects the arena must not need so
/// the verification tests can prove they catch such a leak) and built through <see cref="IWorkloadEngine"/>.
/// </remarks>
internal static class Program
{
    private static int Main(string[] args)
    {
        WorkloadArgs options;
        try
        {
            options = WorkloadArgs.Parse(args);
        }
        catch (FormatException e)
        {
            Console.Error.WriteLine($"gc-workload: {e.Message}");
            return 2;
        }

        Console.Out.Flush();
        // Sized for every tree up front, so the engine's tree list does not change between checkpoints.
        using IWorkloadEngine engine = WorkloadEngines.Create(options.Engine, options.Trees);
        // Warm up twice with a pause between, so that tiered compilation has promoted the hot methods
        // (its call counting starts after a 100 ms delay and runs on a background worker) before the
        // empty-store snapshot: what the runtime creates once per process for JIT tiering is not a
        // cost of the store and must not be counted as one.
        WorkloadEngines.WarmUp(options.Engine, options.Depth);
        Thread.Sleep(300);
        WorkloadEngines.WarmUp(options.Engine, options.Depth);
        Thread.Sleep(300);
        // One round trip of the protocol before the empty-store snapshot: the first completed read of
        // stdin and the first formatted progress line create console and runtime objects once per process.
        Say($"ready {Environment.ProcessId} {engine.Nodes}");
        if (Console.In.ReadLine() != "next")
            return 3;

        var rng = new SplitMix64(SplitMix64.TakeHomeSeed);
        int built = 0;
        foreach (int checkpoint in options.Checkpoints)
        {
            while (built < checkpoint)
            {
                if (options.Shape == "foobarbaz")
                    engine.Insert(engine.AddTree(), "foo;bar;baz"u8, 100);
                else
                    engine.BuildTakeHome(ref rng, options.Width, options.Depth);
                built++;
                Say($"progress {built} {engine.Nodes}");
            }
            Say($"checkpoint {built} {engine.Nodes} {engine.NativeBytes} {engine.TotalsSum}");
            string? answer = Console.In.ReadLine();
            if (answer != "next")
                return 3;
        }
        Say("done");
        return 0;
    }

    private static void Say(string line)
    {
        Console.Out.WriteLine(line);
        Console.Out.Flush();
    }
}

/// <summary>
/// The child's arguments, parsed by hand on purpose: unlike the CLI (System.CommandLine), this process is the
/// one whose managed heap verify-gc measures, so it loads no command-line package whose objects would show
/// up in every heap snapshot. Its only caller is VerificationRunner, which always passes well-formed options.
/// </summary>
internal sealed class WorkloadArgs
{
    public WorkloadEngine Engine { get; private set; } = WorkloadEngine.Arena;
    public string Shape { get; private set; } = "takehome";
    public int Trees { get; private set; } = 1;
    public int Width { get; private set; } = 200;
    public int Depth { get; private set; } = 500;
    public int[] Checkpoints { get; private set; } = [];

    public static WorkloadArgs Parse(string[] args)
    {
        var result = new WorkloadArgs();
        string? checkpoints = null;
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            if (i + 1 >= args.Length)
                throw new FormatException($"{name} needs a value");
            string value = args[++i];
            switch (name)
            {
                case "--engine": result.Engine = WorkloadEngines.Parse(value); break;
                case "--shape": result.Shape = value; break;
                case "--trees": result.Trees = Positive(name, value); break;
                case "--width": result.Width = Positive(name, value); break;
                case "--depth": result.Depth = Positive(name, value); break;
                case "--checkpoints": checkpoints = value; break;
                default: throw new FormatException($"unknown option '{name}'");
            }
        }
        if (result.Shape is not ("takehome" or "foobarbaz"))
            throw new FormatException($"unknown shape '{result.Shape}'");
        var points = new SortedSet<int> { 0, result.Trees };
        if (checkpoints is not null)
        {
            foreach (string part in checkpoints.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int point) || point > result.Trees)
                    throw new FormatException($"checkpoint '{part}' is not a tree count in 0..{result.Trees}");
                points.Add(point);
            }
        }
        result.Checkpoints = [.. points];
        return result;
    }

    private static int Positive(string name, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0
            ? n
            : throw new FormatException($"{name} needs a positive integer, got '{value}'");
}
