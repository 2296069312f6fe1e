// ProfileArena.ClusterPerf: the server as one process and as a cluster of silos on this machine, same pushes:
// ingest and 1 h render under load, the cost of a fan-out render, failover after kill -9. perf/README.md "Cluster".
//   dotnet run -c Release --project perf/ProfileArena.ClusterPerf -- --load-seconds 60 --out /tmp/clusterperf
//   … -- --rebalance --preload-ticks 30 --out /tmp/rebalance   (data into 1 silo, then N−1 join: time until bytes settle)
using System.Globalization;
using System.Text.Json;
using ProfileArena.ClusterPerf;
using ProfileArena.ServerLoad;

if (ClusterOptions.TryParse(args, Console.Error) is not { } options) return 2;
Directory.CreateDirectory(options.Output);
TextWriter log = Console.Error;
Corpus corpus = Corpus.BuildLogged(options.Corpus, log);

long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
// The fixed data set two hours back (aligned, so both configurations plan the same buckets); the load's pushes
// start 50 min back and stay within the last hour, which the 1 h renders read.
long preloadStart = (now - 2 * 3600) / 3600 * 3600;
long loadStart = now - 3000;
var phases = new Phases(options, corpus, preloadStart, log);
var report = new ClusterReport
{
    Date = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
    Command = "ProfileArena.ClusterPerf " + string.Join(' ', args),
    Cores = Environment.ProcessorCount,
    LoadAverageStart = LoadRun.LoadAverage(),
    Options = options,
    MeanStacksPerPush = corpus.MeanStacksPerBody,
    Sources = corpus.SourceNames,
};
var serverArgs = new List<string> { "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:ProfileArena=Information" };
serverArgs.AddRange(options.ServerArgs);
if (options.Rebalance)
{
    string rebalance = await RebalanceScenario.RunAsync(options, phases, serverArgs, log);
    Console.WriteLine(rebalance);
    File.WriteAllText(Path.Combine(options.Output, "rebalance.md"), rebalance);
    log.WriteLine($"wrote {options.Output}/rebalance.md and the servers' logs");
    return 0;
}

foreach (bool cluster in new[] { false, true })
{
    string tag = cluster ? "cluster" : "single";
    using Deployment d = cluster ? await Deployment.StartClusterAsync(options.Silos, serverArgs, log) : await Deployment.StartSingleAsync(serverArgs, log);
    var run = new ConfigurationRun { Name = d.Name, Processes = d.Servers.Count, LoadAverageStart = LoadRun.LoadAverage() };
    try
    {
        log.WriteLine($"[{tag}] preload: {options.PreloadTicks} ticks × {options.Corpus.Services * options.Corpus.LabelSets} series");
        (run.PreloadPushes, run.PreloadFailed) = await phases.PreloadAsync(d);
        log.WriteLine($"[{tag}] fan-out renders of the preloaded data: {options.FanOutRenders}");
        run.FanOut = await phases.FanOutAsync(d);
        log.WriteLine($"[{tag}] load: {options.LoadSeconds} s, {options.Connections} ingest + {options.QueryConnections} render connections");
        run.Load = await phases.LoadAsync(d, loadStart);
        log.WriteLine($"[{tag}] {run.Load.Pushes} pushes, {run.Load.PushesPerSecond:0.0}/s, p50 {run.Load.Ingest.P50:0} ms p99 {run.Load.Ingest.P99:0} ms; " +
            $"render 1 h p50 {run.Load.Render1h.P50:0} ms p99 {run.Load.Render1h.P99:0} ms; fan-out render p50 {run.FanOut.Render.P50:0} ms");
        if (cluster)
        {
            run.Failover = await phases.FailoverAsync(d);
            log.WriteLine($"[cluster] failover: first correct render {run.Failover.FirstCorrectRenderMs:0} ms after the kill, {run.Failover.FailedRequests} failed requests {run.Failover.Note}");
        }
    }
    finally
    {
        run.LoadAverageEnd = LoadRun.LoadAverage();
        report.Configurations.Add(run);
        d.CopyLogs(options.Output, tag);
    }
}
report.LoadAverageEnd = LoadRun.LoadAverage();
string markdown = ClusterReport.Markdown(report);
Console.WriteLine(markdown);
File.WriteAllText(Path.Combine(options.Output, "cluster.md"), markdown);
File.WriteAllText(Path.Combine(options.Output, "cluster.json"), JsonSerializer.Serialize(report, new JsonSerializerOptions
{
    WriteIndented = true,
    NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
}));
log.WriteLine($"wrote {options.Output}/cluster.md, cluster.json and the servers' logs");
return 0;
