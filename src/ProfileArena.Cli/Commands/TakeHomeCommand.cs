using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using ProfileArena.Cli.TakeHomeRun;

namespace ProfileArena.Cli.Commands;

/// <summary>
/// <c>takehome</c>: reproduces the Go take-home program for each engine, each in a child process
/// running <see cref="TakeHomeWorkerCommand"/>, then prints the results side by side.
/// </summary>
internal sealed class TakeHomeCommand : ICommand
{
    public string Name => "takehome";
    public string Summary => "the Go take-home workload, arena vs baseline, side by side";
    public bool Hidden => false;
    public string Usage => TakeHomeOptions.UsageText;

    public int Run(string[] args)
    {
        TakeHomeOptions options = TakeHomeOptions.Parse(args);
        if (options.Help)
        {
            Console.Out.WriteLine(Usage);
            return ExitCodes.Ok;
        }

        string[] engines = options.Engine == "both" ? ["arena", "baseline"] : [options.Engine];
        var results = new List<EngineRun>();
        int exitCode = ExitCodes.Ok;
        // Sequential, not parallel: the machine has 2 cores and timings must not compete.
        foreach (string engine in engines)
        {
            EngineRun run = RunWorker(engine, options);
            HeapCheck.Observe(run, options.Plan()[0]);
            results.Add(run);
            if (run.ExitCode != 0)
            {
                Console.Error.WriteLine($"[{engine}] worker exited with code {run.ExitCode}; its results are incomplete.");
                exitCode = ExitCodes.Failed;
            }
        }

        Report.Print(Console.Out, results, options.Plan());
        return exitCode;
    }

    private static EngineRun RunWorker(string engine, TakeHomeOptions options)
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
        start.ArgumentList.Add(engine);
        foreach (string arg in options.ShapeArguments())
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
                Console.Error.WriteLine($"[{engine}] unexpected worker output: {line}");
        }
        process.WaitForExit();
        run.ExitCode = process.ExitCode;
        return run;
    }
}
