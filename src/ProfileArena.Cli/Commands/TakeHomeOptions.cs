using System.CommandLine;
using System.Globalization;
using ProfileArena.Cli.TakeHomeRun;
using ProfileArena.Workloads;

namespace ProfileArena.Cli.Commands;

/// <summary>The workload shape of <c>takehome</c> and its worker (the worker gets the same shape options).</summary>
internal sealed record TakeHomeShape(int Steps, int? Trees, int? Width, int? Depth)
{
    public bool CustomShape => Trees is not null || Width is not null || Depth is not null;

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
            plan.Add(new StepShape(step.ToString(CultureInfo.InvariantCulture), TakeHome.TreesPerStep, TakeHome.WidthOfStep(step), TakeHome.DepthOfStep(step)));
        return plan;
    }

    /// <summary>The options that reproduce this plan in a worker (engine excluded).</summary>
    public IEnumerable<string> Arguments()
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

        static string Str(int value) => value.ToString(CultureInfo.InvariantCulture);
    }
}

/// <summary>The shape options (--steps, --trees, --width, --depth), defined once for takehome and its worker.</summary>
internal sealed class TakeHomeShapeOptions
{
    private readonly Option<int> _steps = CliOptions.PositiveInt("--steps", "run steps 10 .. 10+N-1 (step i: 100 trees, width 20*i, depth 50*i; earlier steps' trees stay alive)", 1);
    private readonly Option<int?> _trees = CliOptions.OptionalPositiveInt("--trees", "trees in the step (default 100); any of --trees/--width/--depth replaces the step plan by one shape");
    private readonly Option<int?> _width = CliOptions.OptionalPositiveInt("--width", "paths per tree (default 200)");
    private readonly Option<int?> _depth = CliOptions.OptionalPositiveInt("--depth", "symbols per path (default 500)");

    public void AddTo(Command command)
    {
        command.Options.Add(_steps);
        command.Options.Add(_trees);
        command.Options.Add(_width);
        command.Options.Add(_depth);
        command.Validators.Add(r =>
        {
            bool custom = r.GetValue(_trees) is not null || r.GetValue(_width) is not null || r.GetValue(_depth) is not null;
            if (custom && CliOptions.ValueInValidator(r, _steps, 1) != 1)
                r.AddError("--steps cannot be combined with --trees/--width/--depth (they run one shape)");
        });
    }

    public TakeHomeShape Read(ParseResult r) => new(r.GetValue(_steps), r.GetValue(_trees), r.GetValue(_width), r.GetValue(_depth));
}
