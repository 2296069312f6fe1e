using System.Diagnostics;
using System.Globalization;
using System.Text;
using ProfileArena;
using ProfileArena.Server.Storage;

// Ingest throughput of the server's storage (WAL with fsync + apply into 6 levels), then a 24 h query.
//   dotnet run -c Release --project perf/ProfileArena.StoragePerf -- [--writers 8] [--profiles 4000] [--stacks 200] [--series 16] [--dir PATH]
//       [--medium local|blob] [--connection-string CS]
// --medium blob keeps WAL and snapshots in Azure Blob storage (Storage:Medium=AzureBlob): against the connection
// string given, or an Azurite this program starts from tests/azurite (npm ci there first) on free 127.0.0.1 ports.
// Each writer posts one profile per call (like one HTTP upload), series round-robin, one profile per series per
// 10 s, stacks drawn from a pool of realistic depth (5–25 frames of ~20-byte names) so profiles share most paths.
var opts = Args(args);
int writers = opts.GetValueOrDefault("writers", 8), profiles = opts.GetValueOrDefault("profiles", 4000);
int stacksPer = opts.GetValueOrDefault("stacks", 200), seriesCount = opts.GetValueOrDefault("series", 16);
string dir = args.SkipWhile(a => a != "--dir").Skip(1).FirstOrDefault() ?? Path.Combine(Path.GetTempPath(), "pa-storageperf-" + Guid.NewGuid().ToString("N"));
const long T0 = 1_700_000_000;
string medium = StringArg(args, "--medium") ?? "local";
if (medium is not ("local" or "blob")) throw new ArgumentException($"--medium must be local or blob, not '{medium}'");
using Azurite? azurite = medium == "blob" && StringArg(args, "--connection-string") == null ? Azurite.Start() : null;
string? connection = StringArg(args, "--connection-string") ?? azurite?.ConnectionString;
string container = "perf" + Guid.NewGuid().ToString("N")[..16];
StorageOptions Options(int snapshotInterval) => new()
{
    DataDir = dir,
    LevelRetentionSeconds = [],
    SnapshotIntervalSeconds = snapshotInterval,
    Medium = medium == "blob" ? StorageOptions.AzureBlobMedium : StorageOptions.LocalMedium,
    BlobConnectionString = connection,
    BlobContainer = container,
};

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

var storage = new ProfileStorage(Options(0));
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
Console.WriteLine($"medium: {medium}{(medium == "blob" ? (azurite != null ? " (Azurite started here)" : " (connection string)") : "")}");
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
storage = new ProfileStorage(Options(300));
await storage.OpenAsync();
Console.WriteLine($"restart from the snapshot: {clock.Elapsed.TotalMilliseconds:F0} ms");
storage.Dispose();
if (!args.Contains("--dir")) Directory.Delete(dir, true);
if (medium == "blob") await new Azure.Storage.Blobs.BlobContainerClient(connection, container).DeleteIfExistsAsync();

static string? StringArg(string[] args, string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();

static Dictionary<string, int> Args(string[] args)
{
    var d = new Dictionary<string, int>();
    for (int i = 0; i + 1 < args.Length; i++)
    {
        if (args[i].StartsWith("--", StringComparison.Ordinal) && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out int v)) d[args[i][2..]] = v;
    }
    return d;
}

/// <summary>An Azurite for --medium blob without a connection string: tests/azurite's, on free 127.0.0.1 ports, with
/// --disableTelemetry (it would call an outside address otherwise); killed at the end.</summary>
sealed class Azurite : IDisposable
{
    private readonly Process _process;
    private readonly string _location;

    private Azurite(Process process, string location, string connectionString)
    {
        _process = process;
        _location = location;
        ConnectionString = connectionString;
    }

    public string ConnectionString { get; }

    public static Azurite Start()
    {
        string? root = AppContext.BaseDirectory;
        while (root != null && !File.Exists(Path.Combine(root, "ProfileArena.sln"))) root = Path.GetDirectoryName(root);
        string script = Path.Combine(root ?? ".", "tests", "azurite", "node_modules", "azurite", "dist", "src", "azurite.js");
        if (!File.Exists(script)) throw new InvalidOperationException($"{script} is missing: run `npm ci` in tests/azurite");
        string location = Path.Combine(Path.GetTempPath(), "pa-perf-azurite-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(location);
        int[] ports = [.. Enumerable.Range(0, 3).Select(_ => FreePort())];
        var info = new ProcessStartInfo("node") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { script, "--silent", "--disableTelemetry", "--skipApiVersionCheck", "--location", location,
                     "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1",
                     "--blobPort", $"{ports[0]}", "--queuePort", $"{ports[1]}", "--tablePort", $"{ports[2]}" }) info.ArgumentList.Add(a);
        Process process = Process.Start(info)!;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        string cs = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
            + $"BlobEndpoint=http://127.0.0.1:{ports[0]}/devstoreaccount1;";
        var service = new Azure.Storage.Blobs.BlobServiceClient(cs);
        for (int attempt = 0; attempt < 150 && !process.HasExited; attempt++)
        {
            try
            {
                service.GetProperties();
                return new Azurite(process, location, cs);
            }
            catch (Exception e) when (e is Azure.RequestFailedException or AggregateException or HttpRequestException)
            {
                Thread.Sleep(200);
            }
        }
        process.Kill(entireProcessTree: true);
        throw new InvalidOperationException("azurite did not answer within 30 s");
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit(10_000);
        _process.Dispose();
        try { Directory.Delete(_location, true); } catch (IOException) { }
    }
}
