using System.Globalization;
using System.Text;

namespace ProfileArena.ClusterPerf;

/// <summary>One configuration's figures.</summary>
public sealed class ConfigurationRun
{
    public string Name { get; init; } = "";
    public int Processes { get; init; }
    public string LoadAverageStart { get; init; } = "";
    public string LoadAverageEnd { get; set; } = "";
    public int PreloadPushes { get; set; }
    public int PreloadFailed { get; set; }
    public FanOutResult? FanOut { get; set; }
    public LoadResult? Load { get; set; }
    public FailoverResult? Failover { get; set; }
}

/// <summary>The whole run: cluster.json as is, cluster.md from <see cref="Markdown"/>.</summary>
public sealed class ClusterReport
{
    public string Date { get; init; } = "";
    public string Command { get; init; } = "";
    public int Cores { get; init; }
    public string LoadAverageStart { get; init; } = "";
    public string LoadAverageEnd { get; set; } = "";
    public ClusterOptions? Options { get; init; }
    public long MeanStacksPerPush { get; init; }
    public List<string> Sources { get; init; } = [];
    public List<ConfigurationRun> Configurations { get; } = [];

    public const string WhatTwoCoresShow =
        "All processes share this machine's cores (2, shared with other work): 3 silos add no CPU, so the cluster column " +
        "cannot show scale-out. What it shows is the cost of being a cluster on the same hardware: routing each push to its " +
        "shard's grain (another process, often), acknowledgement through the grain's WAL, and for a render the fan-out to " +
        "every shard, each shard's partial tree serialized and merged again by the receiving silo. A throughput or latency " +
        "gain from more silos needs more cores or machines.";

    public static string Markdown(ClusterReport r)
    {
        var md = new StringBuilder();
        string F(double v, string format = "0.0") => double.IsNaN(v) ? "–" : v.ToString(format, CultureInfo.InvariantCulture);
        md.AppendLine(CultureInfo.InvariantCulture, $"# Cluster benchmark — {r.Date}");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"`{r.Command}` — {r.Cores} cores, load average {r.LoadAverageStart} (start) → {r.LoadAverageEnd} (end); pushes of ≈ {r.MeanStacksPerPush:N0} real stacks (gzipped pprof from ../shared/testdata, ServerLoad's corpus).");
        md.AppendLine();
        md.AppendLine(WhatTwoCoresShow);
        md.AppendLine();
        ConfigurationRun[] c = [.. r.Configurations];
        md.AppendLine("| figure | " + string.Join(" | ", c.Select(x => x.Name)) + " |");
        md.AppendLine("|---|" + string.Concat(c.Select(_ => "---:|")));
        void Row(string name, Func<ConfigurationRun, string> value) => md.AppendLine($"| {name} | " + string.Join(" | ", c.Select(value)) + " |");
        Row("load average start → end", x => $"{x.LoadAverageStart} → {x.LoadAverageEnd}");
        Row("ingest: pushes acknowledged / s", x => x.Load == null ? "–" : $"{x.Load.Pushes:N0} in {F(x.Load.Seconds)} s: **{F(x.Load.PushesPerSecond)}/s**");
        Row("ingest latency p50 / p99 (ms)", x => x.Load == null ? "–" : $"{F(x.Load.Ingest.P50, "0")} / {F(x.Load.Ingest.P99, "0")}");
        Row("failed pushes (by status)", x => x.Load == null ? "–" : x.Load.FailedPushesByStatus.Count == 0 ? "0" : string.Join(", ", x.Load.FailedPushesByStatus.Select(p => $"{p.Key}: {p.Value}")));
        Row("render 1 h under ingest p50 / p99 (ms), count", x => x.Load == null ? "–" : $"{F(x.Load.Render1h.P50, "0")} / {F(x.Load.Render1h.P99, "0")}, {x.Load.Render1h.Count} (failed {x.Load.FailedRenders})");
        Row("nodes / series stored at the end", x => x.Load == null ? "–" : $"{x.Load.NodesStored:N0} / {x.Load.SeriesStored:N0}");
        Row("fan-out: same render, same data, alone (p50 / p99 ms)", x => x.FanOut == null ? "–" : $"{F(x.FanOut.Render.P50)} / {F(x.FanOut.Render.P99)} ({x.FanOut.Render.Count} renders, failed {x.FanOut.Failed})");
        Row("  server-side merge phase, mean ms (fan-out + partial merges in a silo)", x => x.FanOut == null ? "–" : F(x.FanOut.ServerMergeMs));
        Row("  stored trees merged per render / shards holding data (partials)", x => x.FanOut == null ? "–" : $"{F(x.FanOut.TreesMergedPerRender)} / {x.FanOut.ShardsHoldingData}");
        Row("  answer (folded lines, SHA-256 prefix)", x => x.FanOut == null ? "–" : $"{x.FanOut.AnswerLines:N0}, {x.FanOut.AnswerSha256[..Math.Min(12, x.FanOut.AnswerSha256.Length)]}");
        md.AppendLine();
        if (c.Length == 2 && c[0].FanOut != null && c[1].FanOut != null)
            md.AppendLine(CultureInfo.InvariantCulture, $"Fan-out answer identical to the single server's: **{(c[0].FanOut!.AnswerSha256 == c[1].FanOut!.AnswerSha256 ? "yes" : "NO")}**.");
        FailoverResult? f = c.Select(x => x.Failover).LastOrDefault(x => x != null);
        if (f != null)
        {
            md.AppendLine();
            md.AppendLine("**Failover** (`kill -9` of the silo hosting the shard of a series written just before; renders of that series through a surviving silo every 100 ms):");
            md.AppendLine();
            md.AppendLine("| figure | value |");
            md.AppendLine("|---|---:|");
            md.AppendLine(CultureInfo.InvariantCulture, $"| killed silo / rendered through | {f.KilledSilo?.ToString(CultureInfo.InvariantCulture) ?? "–"} / {f.RenderedThrough?.ToString(CultureInfo.InvariantCulture) ?? "–"} |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| shards on the killed silo | {f.ShardsOnKilledSilo} |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| kill → first correct render | **{(f.FirstCorrectRenderMs is double ms ? F(ms, "0") + " ms" : "none")}** (kill itself returned after {F(f.KillReturnedMs, "0")} ms) |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| failed requests meanwhile | {f.FailedRequests} ({(f.FailuresByOutcome.Count == 0 ? "none" : string.Join(", ", f.FailuresByOutcome.Select(p => $"{p.Key}: {p.Value}")))}) |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| expected answer (folded lines) | {f.ExpectedLines:N0} |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| svc0.cpu (every acknowledged load push) identical after the move | {(f.LoadSeriesIntact is bool b ? (b ? "yes" : "NO") : "–")} |");
            if (f.Note.Length > 0) md.AppendLine(CultureInfo.InvariantCulture, $"| note | {f.Note} |");
        }
        return md.ToString();
    }
}
