using ProfileArena.Cli.TakeHomeRun;
using ProfileArena.Workloads;

namespace ProfileArena.Cli.Commands;

/// <summary>Options shared by <c>takehome</c> and its worker; the worker gets the same shape options.</summary>
internal sealed class TakeHomeOptions
{
    public const string UsageText = """
        usage: profilearena takehome [options]

        Reproduces the Go take-home program for each engine in its own child process: the cost of one
        'foo;bar;baz'=100 tree, then step 10 (100 trees x width 200 x depth 500, all kept alive) and,
        with --steps, steps 11, 12, ... (width 20*i, depth 50*i; earlier steps' trees stay alive).

        options:
          --engine arena|baseline|both   engines to run (default both)
          --steps N                      run steps 10 .. 10+N-1 (default 1)
          --trees N                      trees in the step     } any of these replaces the step plan
          --width N                      paths per tree        } by one shape (defaults 100, 200, 500)
          --depth N                      symbols per path      }
          --help                         show this text
        """;

    public string Engine { get; private set; } = "both";
    public int Steps { get; private set; } = 1;
    public int? Trees { get; private set; }
    public int? Width { get; private set; }
    public int? Depth { get; private set; }
    public bool Help { get; private set; }

    private bool _stepsGiven;

    public bool CustomShape => Trees is not null || Width is not null || Depth is not null;

    public static TakeHomeOptions Parse(string[] args)
    {
        var options = new TakeHomeOptions();
        var reader = new OptionReader(args);
        while (reader.Next(out string name, out string? inline))
        {
            switch (name)
            {
                case "--engine":
                    options.Engine = reader.Value(name, inline);
                    if (options.Engine is not ("arena" or "baseline" or "both"))
                        throw new UsageException($"--engine must be arena, baseline or both, got '{options.Engine}'");
                    break;
                case "--steps": options.Steps = reader.PositiveInt(name, inline); options._stepsGiven = true; break;
                case "--trees": options.Trees = reader.PositiveInt(name, inline); break;
                case "--width": options.Width = reader.PositiveInt(name, inline); break;
                case "--depth": options.Depth = reader.PositiveInt(name, inline); break;
                case "--help" or "-h": options.Help = true; break;
                default: throw new UsageException($"unknown option '{name}'");
            }
        }
        if (options.CustomShape && options._stepsGiven && options.Steps != 1)
            throw new UsageException("--steps cannot be combined with --trees/--width/--depth (they run one shape)");
        return options;
    }

    /// <summary>The shapes to build, in order, in one process (so earlier trees stay alive).</summary>
    public IReadOnlyList<StepShape> Plan()
    {
        if (CustomShape)
        {
            return [new StepShape("custom", Trees ?? TakeHome.TreesPerStep,
                Width ?? TakeHome.WidthOfStep(TakeHome.FirstStep), Depth ?? TakeHome.DepthOfStep(TakeHome.FirstStep))];
        }
        var plan = new List<StepShape>();
        for (int step = TakeHome.FirstStep; step < TakeHome.FirstStep + Steps; step++)
            plan.Add(new StepShape(step.ToString(System.Globalization.CultureInfo.InvariantCulture), TakeHome.TreesPerStep, TakeHome.WidthOfStep(step), TakeHome.DepthOfStep(step)));
        return plan;
    }

    /// <summary>The options that reproduce this plan in a worker (engine excluded).</summary>
    public IEnumerable<string> ShapeArguments()
    {
        if (CustomShape)
        {
            if (Trees is { } t) { yield return "--trees"; yield return Str(t); }
            if (Width is { } w) { yield return "--width"; yield return Str(w); }
            if (Depth is { } d) { yield return "--depth"; yield return Str(d); }
        }
        else
        {
            yield return "--steps";
            yield return Str(Steps);
        }

        static string Str(int value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}
