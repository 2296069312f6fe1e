using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using ProfileArena.ServerLoad;

namespace ProfileArena.ClusterPerf;

/// <summary>
/// The rebalancing scenario (<c>--rebalance</c>; README "Running a cluster"): the fixed data set pushed into a cluster
/// of one silo (12 shards, so that there is something to spread), then N−1 silos join; every second each silo's
/// /metrics gives its storage bytes (<c>profilearena_storage_budget_bytes</c>, its own shards) and shard count. Settled:
/// every shard open somewhere (none in the middle of a move) and no move logged for 5 s (5 check periods). Reports the
/// bytes per silo before and after, the time from the join to the last move, the moves, the largest silo against the
/// mean, and whether every render answer is the same as before.
/// </summary>
public static class RebalanceScenario
{
    private static readonly string[] FastChecks = ["--Storage:ShardCount=12", "--Cluster:LoadRefreshSeconds=1", "--Cluster:RebalanceIntervalSeconds=1", "--Cluster:RebalanceMinBytes=0"];

    public static async Task<string> RunAsync(ClusterOptions options, Phases phases, IReadOnlyList<string> serverArgs, TextWriter log)
    {
        string[] args = [.. FastChecks, .. serverArgs]; // later arguments win: --server-arg may override these
        using Deployment d = await Deployment.StartClusterAsync(1, args, log);
        var md = new StringBuilder();
        try
        {
            log.WriteLine($"[rebalance] preload into 1 silo: {options.PreloadTicks} ticks × {options.Corpus.Services * options.Corpus.LabelSets} series");
            var (ok, failed) = await phases.PreloadAsync(d);
            string before = await Answers(d, 0, options, phases);
            (long Bytes, long Shards)[] start = await Figures(d);
            log.WriteLine($"[rebalance] {ok} pushes ({failed} failed); 1 silo holds {start[0].Bytes:N0} B in {start[0].Shards} shards; {options.Silos - 1} silos join");
            await d.AddSilosAsync(options.Silos - 1, args);
            var clock = Stopwatch.StartNew();
            (long Bytes, long Shards)[] now = await Figures(d);
            double? settledAfter = null, lastMove = null;
            int moves = 0;
            while (clock.Elapsed < TimeSpan.FromSeconds(options.RebalanceSeconds))
            {
                now = await Figures(d);
                int logged = Moves(d);
                if (logged != moves)
                {
                    moves = logged;
                    lastMove = clock.Elapsed.TotalSeconds;
                }
                double quiet = clock.Elapsed.TotalSeconds - (lastMove ?? 0);
                if (now.Sum(f => f.Shards) == start[0].Shards && quiet >= 5)
                {
                    settledAfter = lastMove ?? 0;
                    break;
                }
                await Task.Delay(1000);
            }
            double ratio = now.Max(f => (double)f.Bytes) / Math.Max(1, now.Average(f => (double)f.Bytes));
            log.WriteLine($"[rebalance] {(settledAfter is double s ? $"last move {s:0.0} s after the join" : "did not settle")}, {moves} moves: {string.Join(", ", now.Select(f => $"{f.Bytes:N0} B / {f.Shards} shards"))}");
            bool same = true;
            for (int i = 0; i < d.Servers.Count; i++) same &= await Answers(d, i, options, phases) == before;
            md.AppendLine(CultureInfo.InvariantCulture, $"**Rebalancing** ({options.Silos - 1} silos join one holding the preloaded data; `{string.Join(' ', FastChecks)}`, threshold ratio 0.25; load average {LoadRun.LoadAverage()}):");
            md.AppendLine();
            md.AppendLine("| figure | value |");
            md.AppendLine("|---|---:|");
            md.AppendLine(CultureInfo.InvariantCulture, $"| preload pushes (failed) | {ok} ({failed}) |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| bytes / shards per silo before | {start[0].Bytes:N0} / {start[0].Shards} on the first, none elsewhere |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| bytes / shards per silo after | {string.Join("; ", now.Select(f => $"{f.Bytes:N0} / {f.Shards}"))} |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| largest silo / mean after | {ratio:0.00} |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| silos ready → last move (then 5 s without one, every shard open) | **{(settledAfter is double t ? t.ToString("0.0", CultureInfo.InvariantCulture) + " s" : $"not settled within {options.RebalanceSeconds} s")}** |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| moves logged (`Rebalance: moved shard …`) | {moves} |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| every render (folded, each service) through every silo equal to the one before | {(same ? "yes" : "NO")} |");
        }
        finally
        {
            d.CopyLogs(options.Output, "rebalance");
        }
        return md.ToString();
    }

    /// <summary>Moves the silos logged so far.</summary>
    private static int Moves(Deployment d) => d.Servers.Sum(s =>
    {
        try
        {
            using var reader = new StreamReader(new FileStream(s.LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete));
            int count = 0;
            for (string? line; (line = reader.ReadLine()) != null;) count += line.Contains("Rebalance: moved shard", StringComparison.Ordinal) ? 1 : 0;
            return count;
        }
        catch (IOException)
        {
            return 0;
        }
    });

    /// <summary>Each silo's storage bytes and shard count from its /metrics.</summary>
    private static async Task<(long Bytes, long Shards)[]> Figures(Deployment d)
    {
        var figures = new (long, long)[d.Servers.Count];
        for (int i = 0; i < figures.Length; i++)
            figures[i] = ((long)(await d.Gauge(i, "profilearena_storage_budget_bytes") ?? 0), (long)(await d.Gauge(i, "profilearena_storage_shards") ?? 0));
        return figures;
    }

    /// <summary>The folded render of every service over the fixed data set through silo <paramref name="silo"/>, hashed.</summary>
    private static async Task<string> Answers(Deployment d, int silo, ClusterOptions options, Phases phases)
    {
        var (from, until) = phases.PreloadRange;
        var all = new StringBuilder();
        for (int k = 0; k < options.Corpus.Services; k++)
        {
            string query = Uri.EscapeDataString($"svc{k}.cpu{{}}");
            all.Append(await d.Clients[silo].GetStringAsync($"/render?query={query}&from={from}&until={until}&format=collapsed")).Append('\n');
        }
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(all.ToString())));
    }
}
