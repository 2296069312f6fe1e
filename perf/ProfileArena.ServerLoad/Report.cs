using System.Globalization;
using System.Text;

namespace ProfileArena.ServerLoad;

/// <summary>The report: a Markdown summary with engines side by side, one table over time per engine, and PNG plots
/// (ScottPlot, as ProfileArena.Verification's ReportWriter draws).</summary>
public static class Report
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string Markdown(LoadReport report)
    {
        var sb = new StringBuilder();
        sb.AppendLine(Inv, $"Server load run {report.Date}: `{report.Command}`");
        sb.AppendLine(Inv, $"Corpus: {report.Options.Services} services × {report.Options.LabelSets} label sets, {report.Options.Variants} bodies per service, mean {report.MeanStacksPerBody:N0} stacks per push, sources {string.Join(", ", report.Sources.Distinct())}");
        sb.AppendLine();
        sb.Append("| figure |");
        foreach (EngineRun e in report.Engines) sb.Append(Inv, $" {e.Engine} |");
        sb.AppendLine();
        sb.Append("|---|");
        foreach (EngineRun _ in report.Engines) sb.Append("---:|");
        sb.AppendLine();
        void Line(string name, Func<EngineRun, string> value)
        {
            sb.Append(Inv, $"| {name} |");
            foreach (EngineRun e in report.Engines) sb.Append(Inv, $" {value(e)} |");
            sb.AppendLine();
        }
        Line("stopped because", e => e.StopReason ?? "");
        Line("load average at start / end", e => $"{e.LoadAverageStart} / {e.LoadAverageEnd}");
        Line("nodes stored", e => $"{e.NodesStored:N0}");
        Line("series / trees", e => $"{e.Series:N0} / {e.Trees:N0}");
        Line("ingest window", e => $"{e.IngestSeconds:0.0} s");
        Line("pushes acknowledged (failed)", e => $"{e.PushesAcknowledged:N0} ({e.Pushes - e.PushesAcknowledged:N0}{(e.Failures.Count > 0 ? ": " + string.Join(", ", e.Failures.Select(f => $"{f.Key}×{f.Value}")) : "")})");
        Line("ingest throughput", e => $"{e.PushesPerSecond:0.0} pushes/s, {e.MegabytesPerSecond:0.00} MB/s");
        Line("ingest latency p50 / p99 / p999 / max", e => $"{Ms(e.Ingest.P50)} / {Ms(e.Ingest.P99)} / {Ms(e.Ingest.P999)} / {Ms(e.Ingest.Max)}");
        Line("render 1 h p50 / p99 (n)", e => $"{Ms(e.Render1h.P50)} / {Ms(e.Render1h.P99)} ({e.Render1h.Count})");
        Line("render 24 h p50 / p99 (n)", e => $"{Ms(e.Render24h.P50)} / {Ms(e.Render24h.P99)} ({e.Render24h.Count})");
        if (report.Options.Soak)
        {
            // Flatness: the spread of each gauge over the last third of the run (retention should hold it flat by then).
            string Spread(EngineRun e, Func<IntervalRow, long> gauge)
            {
                var tail = e.Rows.Skip(e.Rows.Count * 2 / 3).Select(gauge).ToList();
                return tail.Count == 0 ? "-" : $"{Mb(tail.Min())} … {Mb(tail.Max())}";
            }
            Line("soak, last third: nodes min … max", e => { var t = e.Rows.Skip(e.Rows.Count * 2 / 3).Select(r => r.NodesStored).ToList(); return t.Count == 0 ? "-" : $"{t.Min():N0} … {t.Max():N0}"; });
            Line("soak, last third: native / RSS / heap", e => $"{Spread(e, r => r.NativeBytes)} / {Spread(e, r => r.RssBytes)} / {Spread(e, r => r.ManagedHeapBytes)}");
        }
        if (report.Engines.Any(e => e.Steady != null))
        {
            Line("steady state (after the warm-up): from", e => e.Steady is { } s ? $"{s.FromSeconds} s" : "-");
            Line("steady: ingest p50 / p99 / p999 (n)", e => e.Steady is { } s ? $"{Ms(s.Ingest.P50)} / {Ms(s.Ingest.P99)} / {Ms(s.Ingest.P999)} ({s.Ingest.Count})" : "-");
            Line("steady: render 1 h p50 / p99 (n)", e => e.Steady is { } s ? $"{Ms(s.Render1h.P50)} / {Ms(s.Render1h.P99)} ({s.Render1h.Count})" : "-");
            Line("steady: render 24 h p50 / p99 (n)", e => e.Steady is { } s ? $"{Ms(s.Render24h.P50)} / {Ms(s.Render24h.P99)} ({s.Render24h.Count})" : "-");
            Line("steady: GCs gen0 / gen1 / gen2; time in GC; max pause", e => e.Steady is { } s ? $"{string.Join(" / ", s.GcCountByGeneration)}; {s.GcPercentOfTime:0.00} %; {s.GcMaxPauseMs:0.00} ms ({s.LongestPause})" : "-");
        }
        Line("server: mean ms per ingest phase", e => Phases(e.IngestPhasesMeanMs));
        Line("server: ingest requests done within (handler start to durable write)", e => e.IngestServerWithin.Count == 0 ? "-" : string.Join(", ", e.IngestServerWithin));
        Line("load generator's own GCs gen0 / gen1 / gen2, pause", e => e.LoadGeneratorGc);
        Line("server: mean ms per render phase", e => Phases(e.RenderPhasesMeanMs));
        Line("render 1 h phases, mean ms (Server-Timing)", e => e.Render1hBreakdown?.ToString() ?? "-");
        Line("ingest phases, mean ms (Server-Timing)", e => e.IngestBreakdown?.ToString() ?? "-");
        if (report.Options.QuietRenderSeconds > 0)
        {
            Line("render alone after ingest: 1 h p50 / p99 (n)", e => $"{Ms(e.QuietRender1h.P50)} / {Ms(e.QuietRender1h.P99)} ({e.QuietRender1h.Count})");
            Line("render alone after ingest: 24 h p50 / p99 (n)", e => $"{Ms(e.QuietRender24h.P50)} / {Ms(e.QuietRender24h.P99)} ({e.QuietRender24h.Count})");
            Line("render alone: mean ms per phase", e => Phases(e.QuietRenderPhasesMeanMs));
        }
        Line("GCs gen0 / gen1 / gen2", e => string.Join(" / ", e.GcCountByGeneration));
        Line("GC reasons (count)", e => string.Join(", ", e.GcReasons.Take(4).Select(r => $"{r.Key} ×{r.Value}")));
        Line("GC pause total / max", e => $"{e.GcTotalPauseMs:0.0} ms / {e.GcMaxPauseMs:0.00} ms");
        Line("longest GC pauses", e => string.Join("; ", e.GcLongestPauses.Take(3)));
        if (report.Options.AllocationTicks) Line("large object heap allocations (ticks)", e => string.Join("; ", e.GcLargeAllocations.Take(4)));
        if (report.Options.AllocationTicks) Line("small object heap allocations (ticks)", e => string.Join("; ", e.GcSmallAllocations.Take(12)));
        Line("time in GC (pauses / ingest window)", e => $"{e.GcPercentOfTime:0.00} %");
        Line("managed heap last / peak", e => $"{Mb(e.ManagedHeapBytes)} / {Mb(e.ManagedHeapPeakBytes)}");
        Line("live objects (heap snapshot)", e => e.LiveObjects is { } n ? $"{n:N0} ({Mb(e.LiveBytes ?? 0)})" : "not taken");
        Line("RSS end / peak", e => $"{Mb(e.RssBytes)} / {Mb(e.RssPeakBytes)}");
        Line("native bytes (stores)", e => Mb(e.NativeBytes));
        sb.AppendLine();
        foreach (EngineRun e in report.Engines)
        {
            sb.AppendLine(Inv, $"{e.Engine} over time:");
            sb.AppendLine();
            sb.AppendLine("| s | nodes | pushes/s | ingest p50 | ingest p99 | render 1h p99 | render 24h p99 | GCs 0/1/2 | GC pause total | max pause | heap | RSS | native |");
            sb.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|");
            foreach (IntervalRow r in e.Rows)
            {
                sb.AppendLine(Inv, $"| {r.Seconds:0} | {r.NodesStored:N0} | {r.PushesPerSecond:0.0} | {Ms(r.IngestP50)} | {Ms(r.IngestP99)} | {Ms(r.Render1hP99)} | {Ms(r.Render24hP99)} | {string.Join('/', r.GcCountByGeneration)} | {r.GcTotalPauseMs:0} ms | {r.GcMaxPauseMsSoFar:0.0} ms | {Mb(r.ManagedHeapBytes)} | {Mb(r.RssBytes)} | {Mb(r.NativeBytes)} |");
            }
            if (e.TopTypes is { Count: > 0 })
            {
                sb.AppendLine();
                sb.AppendLine(Inv, $"{e.Engine} top live types: {string.Join("; ", e.TopTypes)}");
                if (e.TopTypesByBytes is { Count: > 0 }) sb.AppendLine().AppendLine(Inv, $"{e.Engine} top live types by bytes: {string.Join("; ", e.TopTypesByBytes)}");
            }
            sb.AppendLine();
        }
        return sb.ToString();
    }

    private static string Phases(Dictionary<string, double> phases) =>
        string.Join(", ", phases.Where(p => !p.Key.StartsWith('#')).Select(p => $"{p.Key} {p.Value:0.0}"));

    private static string Ms(double ms) => double.IsNaN(ms) ? "-" : ms.ToString(ms < 10 ? "0.00" : "0", Inv) + " ms";

    private static string Mb(long bytes) => (bytes / 1048576.0).ToString("N0", Inv) + " MiB";

    /// <summary>Three plots against nodes stored (millions), one colour per engine: GC (cumulative pause, max pause),
    /// latency (ingest p99, render 1 h p99), memory (RSS, managed heap, native).</summary>
    public static void Plots(LoadReport report, string directory)
    {
        ScottPlot.Color[] colors = [ScottPlot.Colors.SteelBlue, ScottPlot.Colors.OrangeRed];
        Draw(Path.Combine(directory, "serverload-gc.png"), "Server load: GC pause vs nodes stored", "ms",
            [("cumulative GC pause", r => r.GcTotalPauseMs, false), ("max GC pause so far", r => r.GcMaxPauseMsSoFar, true)]);
        Draw(Path.Combine(directory, "serverload-latency.png"), "Server load: latency p99 per interval vs nodes stored", "ms",
            [("ingest p99", r => r.IngestP99, false), ("render 1 h p99", r => r.Render1hP99, true), ("render 24 h p99", r => r.Render24hP99, true)]);
        Draw(Path.Combine(directory, "serverload-memory.png"), "Server load: memory vs nodes stored", "MiB",
            [("RSS", r => r.RssBytes / 1048576.0, false), ("managed heap", r => r.ManagedHeapBytes / 1048576.0, true), ("native (stores)", r => r.NativeBytes / 1048576.0, true)]);

        void Draw(string path, string title, string unit, (string Name, Func<IntervalRow, double> Y, bool Dashed)[] series)
        {
            var plot = new ScottPlot.Plot();
            int i = 0;
            foreach (EngineRun e in report.Engines)
            {
                ScottPlot.Color color = colors[i++ % colors.Length];
                List<IntervalRow> rows = [.. e.Rows.Where(r => r.NodesStored > 0)];
                if (rows.Count == 0) continue;
                double[] xs = [.. rows.Select(r => r.NodesStored / 1e6)];
                int k = 0;
                foreach (var (name, y, dashed) in series)
                {
                    double[] ys = [.. rows.Select(r => double.IsNaN(y(r)) ? 0 : y(r))];
                    var line = plot.Add.Scatter(xs, ys, color);
                    line.LegendText = $"{e.Engine}: {name}";
                    line.LineWidth = 2;
                    line.MarkerSize = 5;
                    line.MarkerShape = k == 0 ? ScottPlot.MarkerShape.FilledCircle : k == 1 ? ScottPlot.MarkerShape.OpenSquare : ScottPlot.MarkerShape.OpenTriangleUp;
                    if (dashed) line.LinePattern = k == 1 ? ScottPlot.LinePattern.Dashed : ScottPlot.LinePattern.Dotted;
                    k++;
                }
            }
            plot.Title(title);
            plot.XLabel("nodes stored (millions)");
            plot.YLabel(unit);
            plot.Grid.MajorLineColor = ScottPlot.Colors.Black.WithOpacity(.15);
            plot.ShowLegend(ScottPlot.Alignment.UpperLeft);
            plot.SavePng(path, 1100, 600);
        }
    }
}
