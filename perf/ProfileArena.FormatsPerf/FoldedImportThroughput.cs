using ProfileArena.Workloads;
using System.Diagnostics;
using ProfileArena;
using ProfileArena.Formats;

// Folded import throughput: the largest collapsed file of ../shared/testdata, replayed in memory as one
// stream of about --megabytes MB, imported (strict, atomic: staging tree + MergeFrom) into a new tree.
// Reports MB/s and the managed bytes allocated per line. Run (from the repository root):
//   dotnet run -c Release --project perf/ProfileArena.FormatsPerf -- [--megabytes 256] [--runs 3]

int megabytes = 256, runs = 3;
for (int i = 0; i + 1 < args.Length; i += 2)
{
    if (args[i] == "--megabytes") megabytes = int.Parse(args[i + 1]);
    else if (args[i] == "--runs") runs = int.Parse(args[i + 1]);
    else throw new ArgumentException($"unknown option {args[i]}");
}

string root = AppContext.BaseDirectory;
var dir = new DirectoryInfo(root);
while (dir != null && !File.Exists(Path.Combine(dir.FullName, "ProfileArena.sln"))) dir = dir.Parent;
string testdata = Path.GetFullPath(Path.Combine(dir?.FullName ?? throw new DirectoryNotFoundException("ProfileArena.sln not found"), "..", "shared", "testdata", "collapsed"));
string file = Directory.EnumerateFiles(testdata, "*", SearchOption.AllDirectories).OrderByDescending(f => new FileInfo(f).Length).ThenBy(f => f, StringComparer.Ordinal).First();
byte[] data = File.ReadAllBytes(file);
if (data[^1] != (byte)'\n') data = [.. data, (byte)'\n']; // replays must not glue lines together
long lines = data.AsSpan().Count((byte)'\n');
int times = Math.Max(1, (int)((long)megabytes * 1_000_000 / data.Length));

Console.WriteLine($"file: {Path.GetRelativePath(testdata, file)} ({data.Length:N0} bytes, {lines:N0} lines), replayed {times:N0} times = {(long)data.Length * times / 1e6:N1} MB, {lines * times:N0} lines per run");

Measure(Math.Max(1, times / 20), print: false); // warm-up: tiering and PGO
var rates = new List<double>();
for (int r = 0; r < runs; r++) rates.Add(Measure(times, print: true));
rates.Sort();
Console.WriteLine($"median: {rates[rates.Count / 2]:N0} MB/s");

double Measure(int replays, bool print)
{
    using var store = new TreeStore();
    ProfileTree tree = store.CreateTree();
    var input = new ReplayStream(data, replays);
    int gen0 = GC.CollectionCount(0);
    long allocated = GC.GetAllocatedBytesForCurrentThread();
    var clock = Stopwatch.StartNew();
    FoldedImportResult result = FoldedFormat.Import(input, tree);
    clock.Stop();
    allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
    double mb = (double)data.Length * replays / 1e6;
    double rate = mb / clock.Elapsed.TotalSeconds;
    if (print)
        Console.WriteLine($"run: {mb:N1} MB in {clock.Elapsed.TotalMilliseconds:N0} ms = {rate:N0} MB/s, {result.StackLines / clock.Elapsed.TotalSeconds / 1e6:N2} M lines/s; " +
                          $"managed allocation {allocated:N0} B for {result.StackLines:N0} lines = {(double)allocated / result.StackLines:N4} B/line, gen0 GCs {GC.CollectionCount(0) - gen0}; tree {tree.NodeCount:N0} nodes, total {tree.Total:N0}");
    return rate;
}
