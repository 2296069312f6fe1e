using System.Diagnostics;
using System.Diagnostics.Tracing;
using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;
using ProfileArena;
using ProfileArena.Formats;
using ProfileArena.Server.Buffers;
using ProfileArena.Server.Hosting;
using ProfileArena.Server.Ingest;
using ProfileArena.Server.Storage;
using ProfileArena.ServerLoad;

// The server-side cost of one /ingest push, in process and phase by phase (perf/README, "One push, phase by phase").
//   dotnet run -c Release --project perf/ProfileArena.IngestPerf -- [--rounds 3] [--pushes 240] [--stacks 1000] [--dir PATH] [--decode-only]
// Bodies: the ServerLoad corpus (Corpus.Build, default options: 1,000 stacks per push). Per push, each phase alone on the
// same body: gunzip, pprof parse (a sink that keeps nothing), parse into the staging trees the decoder used to build
// (one tree per sample type) and those trees iterated into StackBatches, parse into the PprofStackSums that replaced
// them (stacks summed straight into batches), the whole IngestDecoder.Decode (what /ingest
// does before storing), and ProfileStorage.IngestAsync of its result into a data directory with real fsync (what
// /ingest does after decoding; the apply into trees runs behind it, on its own thread). Allocation per push from
// GC.GetAllocatedBytesForCurrentThread (decode phases) and GC.GetTotalAllocatedBytes (storage: its writer runs on
// other threads); Large Object Heap bytes from the runtime's allocation ticks (one per ≈100 KB, so a push that
// allocates there shows up), gen2 collections from GC.CollectionCount(2).
var opts = Args(args);
int rounds = (int)opts.GetValueOrDefault("rounds", 3), pushes = (int)opts.GetValueOrDefault("pushes", 240);
var load = new LoadOptions { StacksPerPush = (int)opts.GetValueOrDefault("stacks", 1000) };
bool decodeOnly = args.Contains("--decode-only"); // only IngestDecoder.Decode: what a profiler records of the decode alone
string dir = StringArg(args, "--dir") ?? Path.Combine(Path.GetTempPath(), "pa-ingestperf-" + Guid.NewGuid().ToString("N"));

Corpus corpus = Corpus.BuildLogged(load, Console.Out);
var bodies = new List<(int Service, byte[] Body)>();
for (int s = 0; s < corpus.Bodies.Length; s++) bodies.AddRange(corpus.Bodies[s].Select(b => (s, b)));
var serverOptions = new ServerOptions();
var decoder = new IngestDecoder(serverOptions);
var readOptions = new PprofImportOptions { MaxBytes = Math.Min(int.MaxValue, serverOptions.MaxDecompressedBytes) };
Console.WriteLine($"{bodies.Count} bodies, mean {bodies.Average(b => b.Body.Length) / 1e3:0} KB gzipped; server GC {System.Runtime.GCSettings.IsServerGC}, " +
    $"{Environment.ProcessorCount} cores, load average {LoadAverage()}");

using var largeObjects = new LargeObjectTicks();
var storage = new ProfileStorage(new StorageOptions { DataDir = dir, SnapshotIntervalSeconds = 0 });
await storage.OpenAsync();
long from = DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 86_400;
try
{
    for (int round = 0; round < rounds; round++)
    {
        var phases = new Phases();
        int gen2 = GC.CollectionCount(2);
        for (int i = 0; i < pushes; i++)
        {
            var (service, body) = bodies[(round * pushes + i) % bodies.Count];
            long at = from + (round * pushes + i) / 40 * 10;
            IngestParameters parameters = Parameters($"svc{service}{{pod=pod-{i % 8}}}", at, at + 10);

            if (decodeOnly)
            {
                foreach (IngestProfile p in phases.Measure("decode (all of the above)", () => decoder.Decode("perf", parameters, "application/octet-stream", body))) p.Stacks.Dispose();
                continue;
            }
            PooledBuffer inflated = phases.Measure("gunzip", () => BoundedGzip.Decompress(body, serverOptions.MaxDecompressedBytes, "profile"));
            using (inflated)
            {
                phases.Measure("parse (null sink)", () => PprofFormat.ReadInPlace(inflated.WrittenMemory, new NullSink(), readOptions));
                using var staging = new TreeStore(new TreeStoreOptions { MaxNodes = serverOptions.MaxNodesPerRequest });
                var trees = new TreeSink(staging);
                phases.Measure("parse + staging trees", () => PprofFormat.ReadInPlace(inflated.WrittenMemory, trees, readOptions));
                List<StackBatch> batches = phases.Measure("trees into batches", () => trees.Trees.Select(ToBatch).ToList());
                foreach (StackBatch b in batches) b.Dispose();
                // What the decoder does instead since: the samples summed straight into batches (PprofStackSums).
                using var sums = new PprofStackSums(serverOptions.MaxNodesPerRequest);
                phases.Measure("parse + stack sums", () => PprofFormat.ReadInPlace(inflated.WrittenMemory, sums, readOptions));
                foreach (var (_, stacks) in sums.TakeSeries()) stacks.Dispose();
            }
            List<IngestProfile> profiles = phases.Measure("decode (all of the above)", () => decoder.Decode("perf", parameters, "application/octet-stream", body));
            try
            {
                phases.MeasureAllThreads("store (IngestAsync)", () => storage.IngestAsync(profiles, CancellationToken.None).AsTask().GetAwaiter().GetResult());
            }
            finally
            {
                foreach (IngestProfile p in profiles) p.Stacks.Dispose();
            }
        }
        // The apply stage drains before the round's figures: a round's pushes are all applied when the next starts.
        using (var drained = new TreeStore()) storage.Query("perf", new SeriesSelector("svc0.cpu", []), from, from + 10, drained.CreateTree());
        Console.WriteLine($"round {round + 1}/{rounds}: {pushes} pushes, load average {LoadAverage()}, gen2 collections {GC.CollectionCount(2) - gen2}");
        phases.Print(largeObjects);
    }
}
finally
{
    storage.Dispose();
    try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
}

IngestParameters Parameters(string name, long fromSeconds, long untilSeconds) =>
    IngestParameters.Parse(new QueryCollection(new Dictionary<string, StringValues>
    {
        ["name"] = name,
        ["from"] = fromSeconds.ToString(CultureInfo.InvariantCulture),
        ["until"] = untilSeconds.ToString(CultureInfo.InvariantCulture),
        ["format"] = "pprof",
        ["spyName"] = "ingestperf",
    }), serverOptions, DateTimeOffset.UtcNow);

// What IngestDecoder's ToBatch did: the tree's nodes with a self value, as stacks.
static StackBatch ToBatch(ProfileTree tree)
{
    var batch = new StackBatch();
    tree.Iterate((stack, self, _) =>
    {
        if (self > 0) batch.Add(stack, self);
    });
    return batch;
}

static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";

static Dictionary<string, long> Args(string[] args)
{
    var result = new Dictionary<string, long>();
    for (int i = 0; i + 1 < args.Length; i++)
    {
        if (args[i].StartsWith("--", StringComparison.Ordinal) && long.TryParse(args[i + 1], CultureInfo.InvariantCulture, out long v)) result[args[i][2..]] = v;
    }
    return result;
}

static string? StringArg(string[] args, string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();

/// <summary>A sink that keeps nothing: what the pprof parse costs by itself.</summary>
sealed class NullSink : IPprofSampleSink
{
    public void Begin(PprofProfileInfo info) { }
    public void Sample(ReadOnlySpan<byte> stack, ReadOnlySpan<long> values) { }
}

/// <summary>One staging tree per sample type, each sample's non-zero values inserted: what the decoder used to build.</summary>
sealed class TreeSink(TreeStore staging) : IPprofSampleSink
{
    public List<ProfileTree> Trees { get; } = [];

    public void Begin(PprofProfileInfo info)
    {
        foreach (var _ in info.SampleTypes) Trees.Add(staging.CreateTree());
    }

    public void Sample(ReadOnlySpan<byte> stack, ReadOnlySpan<long> values)
    {
        for (int i = 0; i < values.Length && i < Trees.Count; i++)
        {
            if (values[i] > 0) Trees[i].Insert(stack, (ulong)values[i]);
        }
    }
}

/// <summary>Per phase: milliseconds and bytes allocated of every push.</summary>
sealed class Phases
{
    private readonly Dictionary<string, (List<double> Ms, List<long> Bytes)> _phases = [];
    private readonly List<string> _order = [];

    public T Measure<T>(string phase, Func<T> work)
    {
        long bytes = GC.GetAllocatedBytesForCurrentThread();
        long start = Stopwatch.GetTimestamp();
        T result = work();
        Add(phase, Stopwatch.GetElapsedTime(start).TotalMilliseconds, GC.GetAllocatedBytesForCurrentThread() - bytes);
        return result;
    }

    public void Measure(string phase, Action work) => Measure(phase, () => { work(); return 0; });

    /// <summary>Allocation of all threads (the storage's writer loop and apply stage run on their own).</summary>
    public void MeasureAllThreads(string phase, Action work)
    {
        long bytes = GC.GetTotalAllocatedBytes(precise: false);
        long start = Stopwatch.GetTimestamp();
        work();
        Add(phase, Stopwatch.GetElapsedTime(start).TotalMilliseconds, GC.GetTotalAllocatedBytes(precise: false) - bytes);
    }

    private void Add(string phase, double ms, long bytes)
    {
        if (!_phases.TryGetValue(phase, out var lists))
        {
            _phases[phase] = lists = ([], []);
            _order.Add(phase);
        }
        lists.Ms.Add(ms);
        lists.Bytes.Add(bytes);
    }

    public void Print(LargeObjectTicks largeObjects)
    {
        Console.WriteLine($"  {"phase",-28} {"mean ms",8} {"p50 ms",8} {"p99 ms",8} {"max ms",8} {"KB alloc/push",14}");
        foreach (string phase in _order)
        {
            var (ms, bytes) = _phases[phase];
            double[] sorted = [.. ms.Order()];
            Console.WriteLine($"  {phase,-28} {ms.Average(),8:0.00} {Pct(sorted, 0.50),8:0.00} {Pct(sorted, 0.99),8:0.00} {sorted[^1],8:0.00} {bytes.Average() / 1024,14:0.0}");
        }
        var large = largeObjects.TakeAll();
        Console.WriteLine(large.Count == 0
            ? "  Large Object Heap: no allocation ticks"
            : "  Large Object Heap allocation ticks: " + string.Join(", ", large.OrderByDescending(kv => kv.Value.Bytes).Select(kv => $"{kv.Key} {kv.Value.Ticks}× ≈{kv.Value.Bytes / 1e6:0.0} MB")));
    }

    private static double Pct(double[] sorted, double q) => sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * q))];
}

/// <summary>The runtime's allocation ticks for the Large Object Heap, in process (GCAllocationTick_V4, kind 1):
/// one per ≈100 KB allocated there, by type name.</summary>
sealed class LargeObjectTicks : EventListener
{
    private readonly Lock _lock = new();
    private Dictionary<string, (long Ticks, long Bytes)> _ticks = [];

    protected override void OnEventSourceCreated(EventSource source)
    {
        // GC keyword (0x1) at Verbose: the level allocation ticks come at.
        if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName?.StartsWith("GCAllocationTick", StringComparison.Ordinal) != true || e.PayloadNames is null) return;
        int kind = e.PayloadNames.IndexOf("AllocationKind"), amount = e.PayloadNames.IndexOf("AllocationAmount64"), type = e.PayloadNames.IndexOf("TypeName");
        if (kind < 0 || Convert.ToInt32(e.Payload![kind], CultureInfo.InvariantCulture) != 1) return;
        string name = type >= 0 ? e.Payload[type] as string ?? "?" : "?";
        long bytes = amount >= 0 ? Convert.ToInt64(e.Payload[amount], CultureInfo.InvariantCulture) : 0;
        lock (_lock)
        {
            var (t, b) = _ticks.GetValueOrDefault(name);
            _ticks[name] = (t + 1, b + bytes);
        }
    }

    public Dictionary<string, (long Ticks, long Bytes)> TakeAll()
    {
        lock (_lock)
        {
            var all = _ticks;
            _ticks = [];
            return all;
        }
    }
}
