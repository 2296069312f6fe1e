using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ProfileArena.Verification;

/// <summary>Renders a <see cref="VerificationReport"/>: a Markdown table per checkpoint, JSON, and a PNG plot.</summary>
public static class ReportWriter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>One row per checkpoint and engine, engines side by side at equal tree counts.</summary>
    public static string Table(VerificationReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var sb = new StringBuilder();
        sb.AppendLine("| trees | engine | nodes stored | live objects attributable | live managed bytes attributable | live objects (whole heap) | gen2 GCs | gen2 max pause | total GC pause |");
        sb.AppendLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        IEnumerable<int> trees = report.Engines.SelectMany(e => e.Checkpoints.Select(c => c.Trees)).Distinct().Order();
        foreach (int t in trees)
        {
            foreach (EngineResult engine in report.Engines)
            {
                CheckpointResult? c = engine.Checkpoints.Find(x => x.Trees == t);
                if (c is null)
                    continue;
                sb.Append(CultureInfo.InvariantCulture, $"| {t} | {engine.Engine} | {c.Nodes:N0} | {c.AttributableObjects:N0} | {c.AttributableBytes:N0} | {c.LiveObjects:N0} | ");
                sb.Append(CultureInfo.InvariantCulture, $"{c.GcSoFar.CountByGeneration[2]} | {c.GcSoFar.MaxPauseMsByGeneration[2]:0.00} ms | {c.GcSoFar.TotalPauseMs:0.0} ms |");
                if (c.SnapshotEventsLost > 0)
                    sb.Append(CultureInfo.InvariantCulture, $" ({c.SnapshotEventsLost} events lost)");
                sb.AppendLine();
            }
        }
        sb.AppendLine();
        foreach (EngineResult e in report.Engines)
        {
            GcTotals w = e.Workload;
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"{e.Engine}: {w.Count} workload GCs (gen0 {w.CountByGeneration[0]}, gen1 {w.CountByGeneration[1]}, gen2 {w.CountByGeneration[2]}), " +
                $"total pause {w.TotalPauseMs:0.0} ms, max pause gen0 {w.MaxPauseMsByGeneration[0]:0.00} / gen1 {w.MaxPauseMsByGeneration[1]:0.00} / gen2 {w.MaxPauseMsByGeneration[2]:0.00} ms; " +
                $"{e.Gcs.Count(g => g.Snapshot)} snapshot GCs excluded; wall {e.WallSeconds:0.0} s");
        }
        return sb.ToString();
    }

    /// <summary>The top types of each engine's last checkpoint, with their change since the empty store.</summary>
    public static string TopTypes(VerificationReport report, int n = 8)
    {
        ArgumentNullException.ThrowIfNull(report);
        var sb = new StringBuilder();
        foreach (EngineResult e in report.Engines)
        {
            if (e.Last is not { } last)
                continue;
            sb.AppendLine(CultureInfo.InvariantCulture, $"{e.Engine} at {last.Trees} trees, top types by live count (change since the empty store):");
            foreach (TypeRow row in last.TopTypes.Take(n))
                sb.AppendLine(CultureInfo.InvariantCulture, $"  {row.Count,14:N0} {row.CountDelta,+15:+#,0;-#,0;0}  {row.Type}");
        }
        return sb.ToString();
    }

    public static string Json(VerificationReport report) => JsonSerializer.Serialize(report, VerificationJson.Default.VerificationReport);

    /// <summary>One log-log plot against nodes stored: attributable live objects (solid, left axis) and
    /// gen2 max pause (dashed, right axis), one colour per engine.</summary>
    public static void Plot(VerificationReport report, string pngPath, int width = 1100, int height = 600)
    {
        ArgumentNullException.ThrowIfNull(report);
        var plot = new ScottPlot.Plot();
        ScottPlot.Color[] colors = [ScottPlot.Colors.SteelBlue, ScottPlot.Colors.OrangeRed, ScottPlot.Colors.Green, ScottPlot.Colors.Purple];
        int i = 0;
        foreach (EngineResult e in report.Engines)
        {
            // Log scale cannot show 0 or negatives: objects are drawn at max(value, 1), pauses at max(ms, 0.01).
            List<CheckpointResult> points = e.Checkpoints.Where(c => c.Nodes > 0 && c.Trees > 0).ToList();
            if (points.Count == 0)
                continue;
            ScottPlot.Color color = colors[i++ % colors.Length];
            double[] xs = points.Select(c => Math.Log10(c.Nodes)).ToArray();
            double[] ys = points.Select(c => Math.Log10(Math.Max(1, c.AttributableObjects))).ToArray();
            var objects = plot.Add.Scatter(xs, ys, color);
            objects.LegendText = $"{e.Engine}: live objects attributable";
            objects.MarkerSize = 9;
            objects.LineWidth = 2;
            double[] ps = points.Select(c => Math.Log10(Math.Max(0.01, c.GcSoFar.MaxPauseMsByGeneration[2]))).ToArray();
            var pauses = plot.Add.Scatter(xs, ps, color);
            pauses.LegendText = $"{e.Engine}: gen2 max pause (right axis)";
            pauses.MarkerSize = 9;
            pauses.MarkerShape = ScottPlot.MarkerShape.OpenSquare;
            pauses.LineWidth = 2;
            pauses.LinePattern = ScottPlot.LinePattern.Dashed;
            pauses.Axes.YAxis = plot.Axes.Right;
        }
        plot.Title("GC verification: managed heap and gen2 pause vs nodes stored (log-log)");
        plot.XLabel("nodes stored");
        plot.Axes.Left.Label.Text = "live objects attributable to the store (≤ 1 drawn at 1)";
        plot.Axes.Right.Label.Text = "gen2 max pause, ms (none drawn at 0.01)";
        plot.Axes.Bottom.TickGenerator = LogTicks();
        plot.Axes.Left.TickGenerator = LogTicks();
        plot.Axes.Right.TickGenerator = LogTicks();
        plot.Axes.SetLimitsY(-0.3, 8.3, plot.Axes.Left);
        plot.Axes.SetLimitsY(-2.3, 4.3, plot.Axes.Right);
        plot.Grid.MajorLineColor = ScottPlot.Colors.Black.WithOpacity(.15);
        plot.Grid.MinorLineColor = ScottPlot.Colors.Black.WithOpacity(.05);
        plot.Grid.MinorLineWidth = 1;
        plot.ShowLegend(ScottPlot.Alignment.UpperLeft);
        plot.SavePng(pngPath, width, height);

        static ScottPlot.TickGenerators.NumericAutomatic LogTicks() => new()
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = Pow10,
        };

        static string Pow10(double y) => Math.Pow(10, y).ToString("G4", Inv);
    }
}
