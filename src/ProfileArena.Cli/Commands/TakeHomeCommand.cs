using System.CommandLine;
using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using ProfileArena.Cli.TakeHomeRun;
using ProfileArena.Workloads;

namespace ProfileArena.Cli.Commands;

/// <summary>
/// <c>takehome</c>: reproduces the Go take-home program for each engine, each in a child process
/// running <see cref="TakeHomeWorkerCommand"/>, then prints the results side by side.
/// </summary>
internal static class TakeHomeCommand
{
    public static Command Create(CliIo io)
    {
        Option<IReadOnlyList<WorkloadEngine>> engineOption = CliOptions.EngineChoice("engines to run");
        var shape = new TakeHomeShapeOptions();
        var command = new Command("takehome", "the Go take-home workload (one 'foo;bar;baz' tree, then step 10: 100 trees x 200 x 500), arena vs baseline, each in a child process")
        {
            engineOption,
        };
        shape.AddTo(command);
        command.SetAction(r => Run(io, CliOptions.Engines(r, engineOption), shape.Read(r)));
        return command;
    }

    private static int Run(CliIo io, IReadOnlyList<WorkloadEngine> engines, TakeHomeShape shape)
    {
        var results = new List<EngineRun>();
        int exitCode = ExitCodes.Ok;
        // Sequential, not parallel: the machine has 2 cores and timings must not compete.
        foreach (WorkloadEngine engine in engines)
        {
            EngineRun run = RunWorker(io, engine, shape);
            HeapCheck.Observe(run, shape.Plan()[0]);
            results.Add(run);
            if (run.ExitCode != 0)
            {
                io.Err.WriteLine($"[{run.Name}] worker exited with code {run.ExitCode}; its results are incomplete.");
                exitCode = ExitCodes.Failed;
            }
        }

        Report.Print(io.Out, results, shape.Plan());
        return exitCode;
    }

    private static EngineRun RunWorker(CliIo io, WorkloadEngine engine, TakeHomeShape shape)
    {
        var start = new ProcessStartInfo
        {
            FileName = Environment.ProcessPath ?? throw new InvalidOperationException("Cannot find the current executable."),
            RedirectStandardOutput = true, // results; stderr is inherited so progress reaches the terminal
            UseShellExecute = false,
        };
        // Under 'dotnet profilearena.dll' the process is the host: relaunch it with the same assembly.
        if (Path.GetFileNameWithoutExtension(start.FileName).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            start.ArgumentList.Add(Assembly.GetEntryAssembly()?.Location ?? throw new InvalidOperationException("No entry assembly."));
        start.ArgumentList.Add(TakeHomeWorkerCommand.CommandName);
        start.ArgumentList.Add("--engine");
        start.ArgumentList.Add(WorkloadEngines.Name(engine));
        foreach (string arg in shape.Arguments())
            start.ArgumentList.Add(arg);

        var run = new EngineRun(engine);
        using Process process = Process.Start(start) ?? throw new InvalidOperationException("Could not start the worker.");
        while (process.StandardOutput.ReadLine() is { } line)
        {
            WorkerLine? parsed;
            try
            {
                parsed = JsonSerializer.Deserialize(line, WorkerJson.Default.WorkerLine);
            }
            catch (JsonException)
            {
                parsed = null;
            }
            if (parsed?.Single is { } single)
                run.Single = single;
            else if (parsed?.Step is { } step)
                run.Steps.Add(step);
            else
                io.Err.WriteLine($"[{run.Name}] unexpected worker output: {line}");
        }
        process.WaitForExit();
        run.ExitCode = process.ExitCode;
        return run;
    }
}
