using System.Diagnostics;
using System.Globalization;
using System.Text;
using ProfileArena;
using ProfileArena.Server.Storage;

// Ingest throughput of the server's storage (WAL with fsync + apply into 6 levels), then a 24 h query.
//   dotnet run -c Release --project perf/ProfileArena.StoragePerf -- [--writers 8] [--profiles 4000] [--stacks 200] [--series 16] [--dir PATH]
// Each writer posts one profile per call (like one HTTP upload), series round-robin, one profile per series per
// 10 s, stacks drawn from a pool of realistic depth (5–25 frames of ~20-byte names) so profiles share most paths.
var opts = Args(args);
int writers = opts.GetValueOrDefault("writers", 8), profiles = opts.GetValueOrDefault("profiles", 4000);
int stacksPer = opts.GetValueOrDefault("stacks", 200), seriesCount = opts.GetValueOrDefault("series", 16);
string dir = args.SkipWhile(a => a != "--dir").Skip(1).FirstOrDefault() ?? Path.Combine(Path.GetTempPath(), "pa-storageperf-" + Guid.NewGuid().ToString("N"));
const long T0 = 1_700_000_000;

var random = new Random(1);
var pool = new byte[2000][];
for (int i = 0; i < pool.Length; i++)
{
    var sb = new StringBuilder("main");
    int depth = random.Next(5, 25);
    for (int d = 0; d < depth; d++) sb.Append(";github.com/acme/svc/pkg.Func").Append(random.Next(d * 4, d * 4 + 5));
    pool[i] = Encoding.UTF8.GetBytes(sb.ToString());
}
var series = Enumerable.Range(0, seriesCount).Select(i => new SeriesKey("acme", $"app{i % 4}.cpu", [new Label("pod", $"p{i}")])).ToArray();
var calls = new IngestProfile[profiles];
long stackBytes = 0;
for (int i = 0; i < profiles; i++)
{
    var batch = new StackBatch();
    for (int s = 0; s < stacksPer; s++) batch.Add(pool[random.Next(pool.Length)], (ulong)random.Next(1, 100));
    stackBytes += batch.ByteCount;
    calls[i] = new IngestProfile(series[i % seriesCount], T0 + i / seriesCount * 10, T0 + i / seriesCount * 10 + 10, SeriesMetadata.Default, batch);
}

var storage = new ProfileStorage(new StorageOptions { DataDir = dir, LevelRetentionSeconds = [], SnapshotIntervalSeconds = 0 });
await storage.OpenAsync();
long next = -1;
var clock = Stopwatch.StartNew();
await Task.WhenAll(Enumerable.Range(0, writers).Select(_ => Task.Run(async () =>
{
    for (long i = Interlocked.Increment(ref next); i < profiles; i = Interlocked.Increment(ref next))
        await storage.IngestAsync([calls[i]], CancellationToken.None);
})));
double seconds = clock.Elapsed.TotalSeconds;
var (records, syncs) = storage.WalWrites;
StorageStats stats = storage.Stats();
Console.WriteLine($"ingest: {profiles:N0} profiles × {stacksPer} stacks ({stackBytes / 1e6:F1} MB of stacks), {writers} writers, {seriesCount} series, {stats.Shards} shards");
Console.WriteLine($"  {seconds:F2} s = {profiles / seconds:N0} profiles/s, {profiles * (double)stacksPer / seconds:N0} stacks/s, {stackBytes / seconds / 1e6:F1} MB/s; {records:N0} WAL records in {syncs:N0} fsyncs");
Console.WriteLine($"  {stats.Series} series, {stats.Trees:N0} trees, {stats.Nodes:N0} nodes, {stats.NativeBytes / 1048576.0:F1} MiB native, {stats.WalBytes / 1048576.0:F1} MiB WAL");

clock.Restart();
await storage.SnapshotAsync();
Console.WriteLine($"snapshot of all shards: {clock.Elapsed.TotalMilliseconds:F0} ms");
long span = profiles / seriesCount * 10L;
using (var store = new TreeStore())
{
    ProfileTree tree = store.CreateTree();
    clock.Restart();
    QueryResult r = storage.Query("acme", new SeriesSelector("app0.cpu", []), T0 + 5, T0 + 5 + span, tree);
    Console.WriteLine($"query app0.cpu over {span / 3600.0:F1} h: {clock.Elapsed.TotalMilliseconds:F1} ms, {r.TreesMerged} trees merged ({span / 10 * r.Series:N0} 10 s buckets), {tree.NodeCount:N0} nodes");
}
storage.Dispose();
clock.Restart();
storage = new ProfileStorage(new StorageOptions { DataDir = dir, LevelRetentionSeconds = [] });
await storage.OpenAsync();
Console.WriteLine($"restart from the snapshot: {clock.Elapsed.TotalMilliseconds:F0} ms");
storage.Dispose();
if (!args.Contains("--dir")) Directory.Delete(dir, true);

static Dictionary<string, int> Args(string[] args)
{
    var d = new Dictionary<string, int>();
    for (int i = 0; i + 1 < args.Length; i++)
    {
        if (args[i].StartsWith("--", StringComparison.Ordinal) && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out int v)) d[args[i][2..]] = v;
    }
    return d;
}
