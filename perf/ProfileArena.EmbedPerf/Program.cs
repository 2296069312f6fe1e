using System.Diagnostics;
using System.Text;
using ProfileArena;
using ProfileArena.Baseline;
using ProfileArena.Workloads;

// Embedding benchmarks: snapshot Save/Load/OpenSnapshot throughput, and MergeFrom against the Baseline.
// Run (from the repository root):
//   dotnet run -c Release --project perf/ProfileArena.EmbedPerf -- [--trees 20] [--width 100] [--depth 200] [--runs 3] [--dir /tmp]

//   dotnet run -c Release --project perf/ProfileArena.EmbedPerf -- --shapes 100000   (hostile shapes, issue 14)
//   dotnet run -c Release --project perf/ProfileArena.EmbedPerf -- --copy 40          (merge into an empty tree: the copy path)
//   dotnet run -c Release --project perf/ProfileArena.EmbedPerf -- --sum 40           (a render's truncated sum: merge + truncate against MergeTruncated)

int shapesN = Array.IndexOf(args, "--shapes") is int si and >= 0 && si + 1 < args.Length ? int.Parse(args[si + 1]) : 0;
if (shapesN > 0)
{
    DeepShapes.Run(shapesN);
    return;
}

int copyVariants = Array.IndexOf(args, "--copy") is int ci and >= 0 && ci + 1 < args.Length ? int.Parse(args[ci + 1]) : 0;
if (copyVariants > 0)
{
    EmptyCopy.Run(CollapsedTestData(), copyVariants);
    return;
}

int sumVariants = Array.IndexOf(args, "--sum") is int ui and >= 0 && ui + 1 < args.Length ? int.Parse(args[ui + 1]) : 0;
if (sumVariants > 0)
{
    TruncatedSumBench.Run(CollapsedTestData(), sumVariants);
    return;
}

int trees = 20, width = 100, depth = 200, runs = 3;
string dir = Path.GetTempPath();
for (int i = 0; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--trees": trees = int.Parse(args[i + 1]); break;
        case "--width": width = int.Parse(args[i + 1]); break;
        case "--depth": depth = int.Parse(args[i + 1]); break;
        case "--runs": runs = int.Parse(args[i + 1]); break;
        case "--dir": dir = args[i + 1]; break;
        default: throw new ArgumentException($"unknown option {args[i]}");
    }
}

// ../shared/testdata/collapsed beside the repository (found from the program's directory up to ProfileArena.sln).
static string CollapsedTestData()
{
    var d = new DirectoryInfo(AppContext.BaseDirectory);
    while (d != null && !File.Exists(Path.Combine(d.FullName, "ProfileArena.sln"))) d = d.Parent;
    return Path.GetFullPath(Path.Combine(d!.FullName, "..", "shared", "testdata", "collapsed"));
}

static double Median(List<double> xs) { xs.Sort(); return xs[xs.Count / 2]; }
static double Time(Action a) { var sw = Stopwatch.StartNew(); a(); return sw.Elapsed.TotalSeconds; }

// ---- Warm-up on a small store: every snapshot method reaches optimised (tier-1) code before measuring,
// as in a server that saves and loads all day. Without it, methods called once per load stay at tier 0.
{
    using var small = new TreeStore();
    var warmRng = new SplitMix64(3);
    var warmSink = new ArenaSink(small.CreateTree());
    TakeHome.GenerateTree(ref warmRng, 20, 20, ref warmSink);
    string warm = Path.Combine(dir, $"embedperf-warm-{Environment.ProcessId}.snap");
    for (int i = 0; i < 60; i++)
    {
        small.SaveToFile(warm);
        TreeStore.LoadFile(warm).Dispose();
        using var m = TreeStore.OpenSnapshot(warm);
        foreach (var t in m.GetTrees()) _ = t.Top(1, TopBy.Total);
        var c = small.GetTrees()[0].Clone();
        c.MergeFrom(small.GetTrees()[0]);
        small.Remove(c);
    }
    File.Delete(warm);
}

// ---- Snapshots: take-home trees (80-byte unique names: a names-heavy store) -------------------------
Console.WriteLine($"store: {trees} take-home trees, width {width}, depth {depth}");
using var store = new TreeStore();
var rng = new SplitMix64(SplitMix64.TakeHomeSeed);
for (int t = 0; t < trees; t++)
{
    var sink = new ArenaSink(store.CreateTree());
    TakeHome.GenerateTree(ref rng, width, depth, ref sink);
}
string path = Path.Combine(dir, $"embedperf-{Environment.ProcessId}.snap");
try
{
    store.SaveToFile(path); // warm-up
    long bytes = new FileInfo(path).Length;
    double mb = bytes / 1e6;
    Console.WriteLine($"  {store.NodeCount:N0} nodes, {store.SymbolCount:N0} symbols, {store.NativeBytes / 1e6:N1} MB native, snapshot {mb:N1} MB");
    var toNull = new List<double>(); var toFile = new List<double>(); var load = new List<double>(); var open = new List<double>(); var touch = new List<double>();
    for (int r = 0; r < runs; r++)
    {
        toNull.Add(Time(() => store.Save(Stream.Null)));
        toFile.Add(Time(() => store.SaveToFile(path)));
        load.Add(Time(() => TreeStore.LoadFile(path).Dispose()));
        TreeStore? mapped = null;
        open.Add(Time(() => mapped = TreeStore.OpenSnapshot(path)));
        touch.Add(Time(() => { foreach (var t in mapped!.GetTrees()) _ = t.Top(1, TopBy.Total); }));
        mapped!.Dispose();
    }
    // The floor for any load into fresh native memory: allocate the store's native bytes in 64 KiB
    // blocks and touch every page (first-touch page faults dominate on this VM).
    var floor = new List<double>();
    for (int r = 0; r < runs; r++)
        floor.Add(Time(() =>
        {
            long blocks = store.NativeBytes / 65536 + 1;
            var ptrs = new IntPtr[blocks];
            unsafe
            {
                for (long b = 0; b < blocks; b++)
                {
                    byte* p = (byte*)System.Runtime.InteropServices.NativeMemory.AllocZeroed(65536);
                    for (int o = 0; o < 65536; o += 4096) p[o] = 1;
                    ptrs[b] = (IntPtr)p;
                }
                foreach (var p in ptrs) System.Runtime.InteropServices.NativeMemory.Free((void*)p);
            }
        }));
    Console.WriteLine($"| operation | median of {runs} | throughput |");
    Console.WriteLine("|---|---:|---:|");
    Console.WriteLine($"| Save to Stream.Null (hash + copy) | {Median(toNull) * 1e3:N0} ms | {mb / Median(toNull):N0} MB/s |");
    Console.WriteLine($"| SaveToFile (temp, fsync, rename) | {Median(toFile) * 1e3:N0} ms | {mb / Median(toFile):N0} MB/s |");
    Console.WriteLine($"| LoadFile (copy, verify, rebuild indexes) | {Median(load) * 1e3:N0} ms | {mb / Median(load):N0} MB/s |");
    Console.WriteLine($"| floor: allocate + touch {store.NativeBytes / 1e6:N0} MB of fresh native memory | {Median(floor) * 1e3:N0} ms | |");
    Console.WriteLine($"| OpenSnapshot (map; headers and index verified) | {Median(open) * 1e3:N1} ms | |");
    Console.WriteLine($"| first touch of every tree (lazy verify of names and nodes, Top 1) | {Median(touch) * 1e3:N0} ms | {store.NodeCount * 32 / 1e6 / Median(touch):N0} MB/s of nodes |");
}
finally
{
    File.Delete(path);
}

// ---- Merge: a real profile folded repeatedly into an aggregate, and a take-home tree into an empty one -
string testdata = CollapsedTestData();
string largest = Directory.EnumerateFiles(testdata, "*", SearchOption.AllDirectories).OrderByDescending(f => new FileInfo(f).Length).ThenBy(f => f, StringComparer.Ordinal).First();
var lines = File.ReadLines(largest).Select(l => l.TrimEnd()).Where(l => l.LastIndexOf(' ') > 0)
    .Select(l => (Key: Encoding.UTF8.GetBytes(l[..l.LastIndexOf(' ')]), Value: ulong.TryParse(l[(l.LastIndexOf(' ') + 1)..], out ulong v) ? v : 1UL)).ToList();

using var mergeStore = new TreeStore();
var sources = new List<ProfileTree>();
var baselineSources = new List<BaselineTree>();
for (int s = 0; s < 8; s++)
{
    var tree = mergeStore.CreateTree();
    var baseline = new BaselineTree();
    foreach (var (key, value) in lines) { tree.Insert(key, value * (ulong)(s + 1)); baseline.Insert(key, value * (ulong)(s + 1)); }
    sources.Add(tree);
    baselineSources.Add(baseline);
}
var takeHome = mergeStore.CreateTree();
var takeHomeBaseline = new BaselineTree();
var thRng = new SplitMix64(1);
var thSink = new ArenaSink(takeHome);
TakeHome.GenerateTree(ref thRng, width, depth, ref thSink);
takeHome.Iterate((stack, self, _) => takeHomeBaseline.Insert(stack, self));

const int folds = 200;
double arenaFold = 0, baselineFold = 0, arenaCopy = 0, baselineCopy = 0;
var af = new List<double>(); var bf = new List<double>(); var ac = new List<double>(); var bc = new List<double>();
for (int r = 0; r < runs; r++)
{
    af.Add(Time(() =>
    {
        var aggregate = mergeStore.CreateTree();
        for (int i = 0; i < folds; i++) aggregate.MergeFrom(sources[i % sources.Count]);
        mergeStore.Remove(aggregate);
    }));
    bf.Add(Time(() =>
    {
        // The Baseline has no merge: replaying the source's nodes (Iterate + Insert of each self) is how its users add trees.
        var aggregate = new BaselineTree();
        for (int i = 0; i < folds; i++) baselineSources[i % baselineSources.Count].Iterate((stack, self, _) => aggregate.Insert(stack, self));
    }));
    ac.Add(Time(() => { var copy = takeHome.Clone(); mergeStore.Remove(copy); }));
    bc.Add(Time(() => { var copy = new BaselineTree(); takeHomeBaseline.Iterate((stack, self, _) => copy.Insert(stack, self)); }));
}
arenaFold = Median(af); baselineFold = Median(bf); arenaCopy = Median(ac); baselineCopy = Median(bc);
long realNodes = sources[0].NodeCount;
Console.WriteLine();
Console.WriteLine($"merge: {Path.GetFileName(largest)} ({realNodes:N0} nodes) folded {folds}× into an aggregate; a take-home tree ({takeHome.NodeCount:N0} nodes, unique names) into an empty tree");
Console.WriteLine($"| workload | arena MergeFrom | Baseline (Iterate + Insert) | speed-up |");
Console.WriteLine("|---|---:|---:|---:|");
Console.WriteLine($"| fold real profile ×{folds} | {arenaFold * 1e3:N1} ms ({folds * realNodes / arenaFold / 1e6:N0} M nodes/s) | {baselineFold * 1e3:N1} ms | {baselineFold / arenaFold:N1}× |");
Console.WriteLine($"| clone take-home tree | {arenaCopy * 1e3:N1} ms ({takeHome.NodeCount / arenaCopy / 1e6:N1} M nodes/s) | {baselineCopy * 1e3:N1} ms | {baselineCopy / arenaCopy:N1}× |");
