using System.Globalization;
using ProfileArena.Verification;
using ProfileArena.Workloads;

namespace ProfileArena.Cli.Commands;

/// <summary>
/// <c>verify-gc</c>: observes each engine's workload from outside the process (EventPipe GC events and
/// gcdump-style heap snapshots, see ProfileArena.Verification) and prints arena beside Baseline.
/// </summary>
internal sealed class VerifyGcCommand : ICommand
{
    public string Name => "verify-gc";
    public string Summary => "prove from outside (EventPipe) that the managed heap stays flat";
    public bool Hidden => false;

    public string Usage => """
        usage: profilearena verify-gc [options]

        Runs the take-home workload for each engine in a child process started suspended on a diagnostic
        port, records every GC (generation, reason, pause) over EventPipe and takes a heap snapshot the way
        dotnet-gcdump does at each checkpoint (0 = the empty store, subtracted from the others). Prints a
        Markdown table, writes a JSON file of all figures and a PNG plot. Progress goes to stderr.

        options:
          --engine arena|baseline|both   engines to observe (default both)
          --steps N                      the take-home step shape; only 1 (step 10: 100 trees x 200 x 500) is supported
          --trees N                      trees to build     } any of these replaces step 10's shape
          --width N                      paths per tree     } (defaults 100, 200, 500)
          --depth N                      symbols per path   }
          --checkpoints A,B,...          tree counts to snapshot at (default 1,10,100; 0 and the last always)
          --json PATH                    JSON output (default verify-gc.json)
          --plot PATH                    PNG plot (default verify-gc.png)
          --trace PATH                   also record each engine's GC session to PATH.<engine>.nettrace
          --help                         show this text
        """;

    public int Run(string[] args)
    {
        string engine = "both", json = "verify-gc.json", plot = "verify-gc.png";
        string? trace = null, checkpointText = null;
        int trees = TakeHome.TreesPerStep, width = TakeHome.WidthOfStep(TakeHome.FirstStep), depth = TakeHome.DepthOfStep(TakeHome.FirstStep);
        var reader = new OptionReader(args);
        while (reader.Next(out string name, out string? inline))
        {
            switch (name)
            {
                case "--engine":
                    engine = reader.Value(name, inline);
                    if (engine is not ("arena" or "baseline" or "both"))
                        throw new UsageException($"--engine must be arena, baseline or both, got '{engine}'");
                    break;
                case "--steps":
                    if (reader.PositiveInt(name, inline) != 1)
                        throw new UsageException("verify-gc supports --steps 1 only (step 10); use --trees/--width/--depth for other shapes");
                    break;
                case "--trees": trees = reader.PositiveInt(name, inline); break;
                case "--width": width = reader.PositiveInt(name, inline); break;
                case "--depth": depth = reader.PositiveInt(name, inline); break;
                case "--checkpoints": checkpointText = reader.Value(name, inline); break;
                case "--json": json = reader.Value(name, inline); break;
                case "--plot": plot = reader.Value(name, inline); break;
                case "--trace": trace = reader.Value(name, inline); break;
                case "--help" or "-h":
                    Console.Out.WriteLine(Usage);
                    return ExitCodes.Ok;
                default: throw new UsageException($"unknown option '{name}'");
            }
        }
        if ((long)width * depth > int.MaxValue)
            throw new UsageException($"--width x --depth = {(long)width * depth} nodes per tree is too many");
        var checkpoints = new List<int>();
        foreach (string part in (checkpointText ?? "1,10,100").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int c))
                throw new UsageException($"--checkpoints needs tree counts separated by commas, got '{part}'");
            if (c > trees)
            {
                if (checkpointText is not null)
                    throw new UsageException($"checkpoint {c} is more than --trees {trees}");
                continue; // a default checkpoint beyond a smaller custom shape
            }
            checkpoints.Add(c);
        }

        WorkloadEngine[] engines = engine switch
        {
            "arena" => [WorkloadEngine.Arena],
            "baseline" => [WorkloadEngine.Baseline],
            _ => [WorkloadEngine.Arena, WorkloadEngine.Baseline],
        };

        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true; // let the runner stop the child and the session, then exit
            Console.Error.WriteLine("verify-gc: interrupted; stopping the child...");
            cts.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            var report = new VerificationReport
            {
                Command = "profilearena verify-gc " + string.Join(' ', args),
                Date = DateTimeOffset.Now,
            };
            foreach (WorkloadEngine e in engines)
            {
                var runner = new VerificationRunner
                {
                    Log = Console.Error,
                    TraceOutputPath = trace is null ? null : $"{trace}.{WorkloadSpec.EngineName(e)}.nettrace",
                };
                report.Engines.Add(runner.Run(new WorkloadSpec(e, trees, width, depth, checkpoints), cts.Token));
            }

            File.WriteAllText(json, ReportWriter.Json(report));
            ReportWriter.Plot(report, plot);
            Console.Out.WriteLine(ReportWriter.Table(report));
            Console.Out.WriteLine(ReportWriter.TopTypes(report));
            Console.Error.WriteLine($"verify-gc: wrote {json} and {plot}");
            return ExitCodes.Ok;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("verify-gc: cancelled; the child was stopped");
            return 130;
        }
        catch (VerificationException e)
        {
            Console.Error.WriteLine($"error: verify-gc failed during {e.Phase}: {e.Message}");
            return ExitCodes.Failed;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }
}
