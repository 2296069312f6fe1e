using System.Diagnostics;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using ProfileArena.Benchmarks.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Benchmarks;

public static class Program
{
    /// <summary>
    /// <c>--smoke</c>: every benchmark once, in-process, tiny shapes (CI; seconds).
    /// <c>--loop WHAT [count]</c>: one workload in a plain loop, for perf record (see Support/Loop.cs).
    /// <c>--memory [trees]</c>: native bytes per node of the take-home step (default 100 trees) and of the real-shape store.
    /// Anything else goes to BenchmarkDotNet (e.g. <c>--filter '*'</c>); with no <c>--job</c>, the suite's
    /// default job (1 launch, 3 warm-ups, 10 iterations) is used.
    /// </summary>
    public static int Main(string[] args)
    {
        if (args.Contains("--smoke")) return Smoke(args.Where(a => a != "--smoke").ToArray());
        int loop = Array.IndexOf(args, "--loop");
        if (loop >= 0 && loop + 1 < args.Length)
            return Loop.Run(args[loop + 1], loop + 2 < args.Length ? int.Parse(args[loop + 2]) : 10);
        int memory = Array.IndexOf(args, "--memory");
        if (memory >= 0)
        {
            int trees = memory + 1 < args.Length && int.TryParse(args[memory + 1], out int n) ? n : TakeHome.TreesPerStep;
            return MemoryReport.Run(trees);
        }

        IConfig config = DefaultConfig.Instance
            .WithSummaryStyle(SummaryStyle.Default.WithRatioStyle(RatioStyle.Trend))
            .AddExporter(MarkdownExporter.GitHub);
        if (!args.Any(a => a.StartsWith("--job", StringComparison.Ordinal) || a == "-j"))
            config = config.AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(10).AsDefault());
        if (args.Length == 0) args = ["--filter", "*"];
        IEnumerable<Summary> summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
        return Failed(summaries) ? 1 : 0;
    }

    private static int Smoke(string[] rest)
    {
        Shapes.Smoke = true;
        var watch = Stopwatch.StartNew();
        IConfig config = ManualConfig.CreateEmpty()
            .AddJob(Job.Dry.WithToolchain(InProcessEmitToolchain.Instance))
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddColumnProvider(DefaultColumnProviders.Instance)
            .AddLogger(ConsoleLogger.Default)
            .WithOptions(ConfigOptions.DisableLogFile | ConfigOptions.JoinSummary);
        string[] args = rest.Length == 0 ? ["--filter", "*"] : rest;
        IEnumerable<Summary> summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config).ToList();
        int benchmarks = summaries.Sum(s => s.Reports.Length);
        bool failed = Failed(summaries) || benchmarks == 0;
        Console.WriteLine($"smoke: {benchmarks} benchmark cases ran once each in {watch.Elapsed.TotalSeconds:F0} s: {(failed ? "FAILED" : "ok")}");
        return failed ? 1 : 0;
    }

    private static bool Failed(IEnumerable<Summary> summaries)
    {
        bool failed = false;
        foreach (Summary summary in summaries)
        {
            if (summary.HasCriticalValidationErrors)
            {
                failed = true;
                foreach (var error in summary.ValidationErrors) Console.Error.WriteLine($"validation: {error.Message}");
            }
            foreach (BenchmarkReport report in summary.Reports)
            {
                if (!report.Success || report.ResultStatistics is null)
                {
                    failed = true;
                    Console.Error.WriteLine($"benchmark failed: {report.BenchmarkCase.DisplayInfo}");
                }
            }
        }
        return failed;
    }
}
