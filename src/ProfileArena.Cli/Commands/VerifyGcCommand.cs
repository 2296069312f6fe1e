using System.CommandLine;
using System.Globalization;
using ProfileArena.Verification;
using ProfileArena.Workloads;

namespace ProfileArena.Cli.Commands;

/// <summary>
/// <c>verify-gc</c>: observes each engine's workload from outside the process (EventPipe GC events and
/// gcdump-style heap snapshots, see ProfileArena.Verification) and prints arena beside Baseline.
/// </summary>
internal static class VerifyGcCommand
{
    public static Command Create(CliIo io)
    {
        Option<IReadOnlyList<WorkloadEngine>> engineOption = CliOptions.EngineChoice("engines to observe");
        var steps = new Option<int>("--steps")
        {
            Description = "the take-home step shape; only 1 (step 10: 100 trees x 200 x 500) is supported",
            HelpName = "N",
            DefaultValueFactory = _ => 1,
            CustomParser = r =>
            {
                string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
                if (!CliOptions.TryPositive(text, out int value)) r.AddError($"--steps needs a positive integer, got '{text}'");
                else if (value != 1) r.AddError("verify-gc supports --steps 1 only (step 10); use --trees/--width/--depth for other shapes");
                return value;
            },
        };
        Option<int> trees = CliOptions.PositiveInt("--trees", "trees to build (any of --trees/--width/--depth replaces step 10's shape)", TakeHome.TreesPerStep);
        Option<int> width = CliOptions.PositiveInt("--width", "paths per tree", TakeHome.WidthOfStep(TakeHome.FirstStep));
        Option<int> depth = CliOptions.PositiveInt("--depth", "symbols per path", TakeHome.DepthOfStep(TakeHome.FirstStep));
        var checkpoints = new Option<string?>("--checkpoints") { Description = "tree counts to snapshot at (default 1,10,100; 0 and the last always)", HelpName = "A,B,..." };
        var json = new Option<string>("--json") { Description = "JSON output", HelpName = "PATH", DefaultValueFactory = _ => "verify-gc.json" };
        var plot = new Option<string>("--plot") { Description = "PNG plot", HelpName = "PATH", DefaultValueFactory = _ => "verify-gc.png" };
        var trace = new Option<string?>("--trace") { Description = "also record each engine's GC session to PATH.<engine>.nettrace", HelpName = "PATH" };
        var command = new Command("verify-gc", "prove from outside (EventPipe GC events, gcdump-style heap snapshots) that the managed heap stays flat")
        {
            engineOption, steps, trees, width, depth, checkpoints, json, plot, trace,
        };
        command.Validators.Add(r =>
        {
            int w = CliOptions.ValueInValidator(r, width, TakeHome.WidthOfStep(TakeHome.FirstStep));
            int d = CliOptions.ValueInValidator(r, depth, TakeHome.DepthOfStep(TakeHome.FirstStep));
            if ((long)w * d > int.MaxValue)
                r.AddError($"--width x --depth = {(long)w * d} nodes per tree is too many");
            if (Checkpoints(r.GetValue(checkpoints), CliOptions.ValueInValidator(r, trees, TakeHome.TreesPerStep), out string? error) is null)
                r.AddError(error!);
        });
        command.SetAction(r => Run(io, CliOptions.Engines(r, engineOption), r.GetValue(trees), r.GetValue(width), r.GetValue(depth),
            Checkpoints(r.GetValue(checkpoints), r.GetValue(trees), out _)!, r.GetValue(json)!, r.GetValue(plot)!, r.GetValue(trace),
            "profilearena " + string.Join(' ', r.Tokens.Select(t => t.Value))));
        return command;
    }

    /// <summary>The checkpoint list, or null with <paramref name="error"/> set.</summary>
    private static List<int>? Checkpoints(string? text, int trees, out string? error)
    {
        error = null;
        var checkpoints = new List<int>();
        foreach (string part in (text ?? "1,10,100").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int c))
            {
                error = $"--checkpoints needs tree counts separated by commas, got '{part}'";
                return null;
            }
            if (c > trees)
            {
                if (text is not null)
                {
                    error = $"checkpoint {c} is more than --trees {trees}";
                    return null;
                }
                continue; // a default checkpoint beyond a smaller custom shape
            }
            checkpoints.Add(c);
        }
        return checkpoints;
    }

    private static int Run(CliIo io, IReadOnlyList<WorkloadEngine> engines, int trees, int width, int depth, List<int> checkpoints, string json, string plot, string? trace, string commandLine)
    {
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true; // let the runner stop the child and the session, then exit
            io.Err.WriteLine("verify-gc: interrupted; stopping the child...");
            cts.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            var report = new VerificationReport
            {
                Command = commandLine,
                Date = DateTimeOffset.Now,
            };
            foreach (WorkloadEngine e in engines)
            {
                var runner = new VerificationRunner
                {
                    Log = io.Err,
                    TraceOutputPath = trace is null ? null : $"{trace}.{WorkloadEngines.Name(e)}.nettrace",
                };
                report.Engines.Add(runner.Run(new WorkloadSpec(e, trees, width, depth, checkpoints), cts.Token));
            }

            File.WriteAllText(json, ReportWriter.Json(report));
            ReportWriter.Plot(report, plot);
            io.Out.WriteLine(ReportWriter.Table(report));
            io.Out.WriteLine(ReportWriter.TopTypes(report));
            io.Err.WriteLine($"verify-gc: wrote {json} and {plot}");
            return ExitCodes.Ok;
        }
        catch (OperationCanceledException)
        {
            io.Err.WriteLine("verify-gc: cancelled; the child was stopped");
            return 130;
        }
        catch (VerificationException e)
        {
            io.Err.WriteLine($"error: verify-gc failed during {e.Phase}: {e.Message}");
            return ExitCodes.Failed;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }
}
