// ProfileArena.ServerLoad: the server under sustained pprof ingest and /render queries, arena then Baseline,
// each in its own child process on 127.0.0.1 with a fresh data directory. See perf/README.md "Server load".
//   dotnet run -c Release --project perf/ProfileArena.ServerLoad -- --target-nodes 10000000 --out /tmp/serverload
using System.Globalization;
using ProfileArena.ServerLoad;

LoadOptions options;
try
{
    options = LoadOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}
Directory.CreateDirectory(options.Output);
TextWriter log = Console.Error;
Corpus corpus = Corpus.BuildLogged(options, log);

var report = new LoadReport
{
    Date = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
    Command = "ProfileArena.ServerLoad " + string.Join(' ', args),
    Options = options,
    Sources = corpus.SourceNames,
    CorpusBytes = corpus.BodyBytes,
    MeanStacksPerBody = corpus.MeanStacksPerBody,
};
var serverArgs = new List<string> { "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:ProfileArena=Information" };
if (options.Soak && !options.ServerArgs.Any(a => a.Contains("LevelRetentionSeconds", StringComparison.Ordinal)))
{
    // Soak: two levels with short retention, so that every level's size goes flat within ~12 minutes and a 30-minute
    // soak shows ~18 minutes of flat size: 10 s buckets kept 2 min, 100 s buckets 10 min (with the default six levels
    // the 1000 s … 10^6 s buckets would keep growing for hours, as in the first 12-minute soak). Retention every 10 s.
    serverArgs.AddRange(["--Storage:Levels=2", "--Storage:LevelRetentionSeconds:0=120", "--Storage:LevelRetentionSeconds:1=600", "--Storage:RetentionIntervalSeconds=10"]);
}
serverArgs.AddRange(options.ServerArgs);

foreach (string engine in options.Engines)
{
    string dataDir = Path.Combine(Path.GetTempPath(), $"pa-serverload-{Environment.ProcessId}-{engine}");
    if (Directory.Exists(dataDir)) Directory.Delete(dataDir, recursive: true);
    log.WriteLine($"[{engine}] starting the server (data {dataDir}), load average {LoadRun.LoadAverage()}");
    try
    {
        using ServerProcess server = await ServerProcess.StartAsync(engine, dataDir, serverArgs, TimeSpan.FromSeconds(60), options.ServerEnvironment);
        using var gc = new GcObserver(server.Pid, options.AllocationTicks);
        await Task.Delay(500);
        var run = new LoadRun(options, corpus, server, gc, log);
        EngineRun result = await run.RunAsync(engine);
        report.Engines.Add(result);
        log.WriteLine($"[{engine}] {result.StopReason}: {result.NodesStored:N0} nodes, {result.PushesAcknowledged:N0} pushes in {result.IngestSeconds:0.0} s, " +
            $"ingest p99 {result.Ingest.P99:0.0} ms, GC {result.GcPercentOfTime:0.00} % (max pause {result.GcMaxPauseMs:0.0} ms)");
        server.Kill();
        File.Copy(server.LogPath, Path.Combine(options.Output, $"server-{engine}.log"), overwrite: true);
    }
    finally
    {
        try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { }
    }
}

string markdown = Report.Markdown(report);
Console.WriteLine(markdown);
File.WriteAllText(Path.Combine(options.Output, "serverload.md"), markdown);
File.WriteAllText(Path.Combine(options.Output, "serverload.json"), report.ToJson());
Report.Plots(report, options.Output);
log.WriteLine($"wrote {options.Output}/serverload.md, serverload.json, serverload-gc.png, serverload-latency.png, serverload-memory.png");
return 0;
