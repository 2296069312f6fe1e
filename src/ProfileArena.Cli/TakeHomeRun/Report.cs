using System.Globalization;
using ProfileArena.Workloads;

namespace ProfileArena.Cli.TakeHomeRun;

/// <summary>Everything one engine's worker reported.</summary>
internal sealed class EngineRun(WorkloadEngine engine)
{
    public WorkloadEngine Engine { get; } = engine;
    public string Name => WorkloadEngines.Name(Engine);
    public SingleTreeCost? Single { get; set; }
    public List<StepResult> Steps { get; } = [];
    public int ExitCode { get; set; }
    /// <summary>Live objects one foo;bar;baz tree costs, from an EventPipe heap snapshot (see <see cref="HeapCheck"/>).</summary>
    public long? HeapSingle { get; set; }
    /// <summary>Live objects the first step's trees cost, from an EventPipe heap snapshot.</summary>
    public long? HeapStep { get; set; }
}

/// <summary>Side-by-side tables: one column per engine, plus baseline/arena when both ran.</summary>
internal static class Report
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Print(TextWriter o, IReadOnlyList<EngineRun> runs, IReadOnlyList<StepShape> plan)
    {
        EngineRun? arena = runs.FirstOrDefault(r => r.Engine == WorkloadEngine.Arena);
        EngineRun? baseline = runs.FirstOrDefault(r => r.Engine == WorkloadEngine.Baseline);
        bool ratio = arena is not null && baseline is not null;

        o.WriteLine();
        o.WriteLine("one tree with foo;bar;baz = 100");
        var single = new Table(runs, ratio);
        single.Row("nodes (root included)", r => r.Single?.Nodes, Count);
        single.Row("managed bytes allocated", r => r.Single?.ManagedAllocatedBytes, Bytes);
        single.Row("native bytes", r => r.Single?.NativeBytes, Bytes);
        single.Row("live objects (EventPipe heap snapshot)", r => r.HeapSingle, Count);
        single.Print(o);

        for (int i = 0; i < plan.Count; i++)
        {
            StepShape shape = plan[i];
            o.WriteLine();
            o.WriteLine($"step {shape.Label}: {shape.Trees} trees x width {shape.Width} x depth {shape.Depth}" +
                (i > 0 ? " (earlier steps' trees still alive)" : ""));
            int step = i;
            StepResult? Of(EngineRun r) => step < r.Steps.Count ? r.Steps[step] : null;

            var t = new Table(runs, ratio);
            t.Row("nodes built", r => Of(r)?.NodesBuilt, Count);
            t.Row("nodes alive", r => Of(r)?.NodesAlive, Count);
            if (step == 0)
                t.Row("live objects (EventPipe heap snapshot)", r => r.HeapStep, Count);
            t.Row("build time", r => Of(r)?.BuildSeconds, Seconds);
            t.Row("GC gen0 collections", r => Of(r)?.Gen0Collections, Count);
            t.Row("GC gen1 collections", r => Of(r)?.Gen1Collections, Count);
            t.Row("GC gen2 collections", r => Of(r)?.Gen2Collections, Count);
            t.Row("GC pause during build", r => Of(r)?.GcPauseSeconds, Seconds);
            t.Row("forced full GC, trees alive", r => Of(r)?.FullCollectionSeconds, Seconds);
            t.Row("  median of 3 in a row", r => Of(r)?.FullCollectionMedianSeconds, Seconds);
            t.Row("managed heap after it", r => Of(r)?.ManagedHeapBytes, Bytes);
            t.Row("native bytes", r => Of(r)?.NativeBytes, Bytes);
            t.Row("bytes per node", r => Of(r)?.BytesPerNode, v => v.ToString("F1", Inv));
            t.Row("peak RSS (process)", r => Of(r)?.PeakRssBytes, Bytes);
            t.Print(o);

            // Same seed and generator: the engines built the same trees, so their totals agree.
            if (ratio && Of(arena!) is { } a && Of(baseline!) is { } b)
            {
                o.WriteLine(a.TotalsSum == b.TotalsSum
                    ? $"check: tree totals agree ({a.TotalsSum.ToString("N0", Inv)})"
                    : $"CHECK FAILED: tree totals differ (arena {a.TotalsSum}, baseline {b.TotalsSum})");
            }
        }
    }

    private static string Count(double v) => v.ToString("N0", Inv);

    private static string Seconds(double v) => v < 1 ? $"{v * 1000:F1} ms" : $"{v:F2} s";

    private static string Bytes(double v)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        int u = 0;
        while (Math.Abs(v) >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }
        return u == 0 ? $"{v:F0} B" : $"{v:F2} {units[u]}";
    }

    private sealed class Table(IReadOnlyList<EngineRun> runs, bool ratio)
    {
        private readonly List<string[]> _rows = [];

        public void Row(string name, Func<EngineRun, double?> value, Func<double, string> format)
        {
            var cells = new List<string> { name };
            foreach (EngineRun run in runs)
                cells.Add(value(run) is { } v ? format(v) : "-");
            if (ratio)
            {
                double? a = value(runs.First(r => r.Engine == WorkloadEngine.Arena));
                double? b = value(runs.First(r => r.Engine == WorkloadEngine.Baseline));
                cells.Add(a is { } x && b is { } y
                    ? x == 0 ? (y == 0 ? "=" : "inf") : (y / x).ToString("0.##", Inv) + "x"
                    : "-");
            }
            _rows.Add([.. cells]);
        }

        public void Print(TextWriter o)
        {
            string[] header = [.. new[] { "" }.Concat(runs.Select(r => r.Name)).Concat(ratio ? ["baseline/arena"] : [])];
            var all = new List<string[]> { header };
            all.AddRange(_rows);
            int[] widths = [.. Enumerable.Range(0, header.Length).Select(c => all.Max(r => r[c].Length))];
            foreach (string[] row in all)
            {
                // Name left-aligned, numbers right-aligned.
                o.WriteLine(string.Join("  ", row.Select((cell, c) => c == 0 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]))).TrimEnd());
            }
        }
    }
}
