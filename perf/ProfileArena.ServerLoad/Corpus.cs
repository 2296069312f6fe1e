using System.Text;
using ProfileArena.Formats;

namespace ProfileArena.ServerLoad;

/// <summary>
/// The push bodies, built before any server starts (so building them costs nothing in the measured window):
/// real profiles from ../shared/testdata (pprof read with <see cref="PprofFormat"/>, collapsed with
/// <see cref="FoldedFormat"/>): per service a "program" (a share of large.cpu's stacks plus one smaller real
/// profile), and per service <see cref="LoadOptions.Variants"/> gzipped pprof bodies written with
/// <see cref="PprofFormat.Export"/>: each about <see cref="LoadOptions.StacksPerPush"/> stacks of the program, values scaled ×1…×4, and a share of leaf frames renamed to a variant-specific name so that new
/// nodes keep appearing in the coarse levels at a controlled rate.
/// </summary>
public sealed class Corpus
{
    /// <summary>The big real profile every service's program is drawn from (20,362 stacks, 425,052 nodes, depth 62).</summary>
    private const string Program = "pprof/google-pprof/large.cpu";

    /// <summary>Smaller real profiles mixed into the services round-robin (other runtimes' shapes).</summary>
    private static readonly string[] Extras =
    [
        "collapsed/FlameGraph/perf-vertx-stacks-01-collapsed-all.txt",
        "collapsed/FlameGraph/perf-rust-Yamakaky-dcpu-collapsed-all.txt",
        "collapsed/FlameGraph/perf-java-stacks-01-collapsed-all.txt",
        "collapsed/FlameGraph/perf-iperf-stacks-pidtid-01-collapsed-all.txt",
        "pprof/go-torch/pprof.1.pb.gz",
        "pprof/google-pprof/sample.cpu",
    ];

    private Corpus(List<byte[]>[] bodies, List<string> sourceNames, long bodyBytes, long stacksPerBody)
    {
        Bodies = bodies;
        SourceNames = sourceNames;
        BodyBytes = bodyBytes;
        MeanStacksPerBody = stacksPerBody;
    }

    /// <summary>Bodies[service][variant]: gzipped pprof.</summary>
    public List<byte[]>[] Bodies { get; }

    /// <summary>The source file of each service.</summary>
    public List<string> SourceNames { get; }

    /// <summary>Bytes of all bodies.</summary>
    public long BodyBytes { get; }

    /// <summary>Mean stacks (samples) per body.</summary>
    public long MeanStacksPerBody { get; }

    /// <summary>Finds ../shared/testdata above the program's directory (the worktree's sibling).</summary>
    public static string FindTestData()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared", "testdata");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException($"shared/testdata not found above {AppContext.BaseDirectory} (expected ../shared/testdata beside the worktree)");
    }

    /// <summary>Builds the bodies from ../shared/testdata, saying so on <paramref name="log"/> (every perf program driving
    /// the server starts this way: ServerLoad, ClusterPerf).</summary>
    public static Corpus BuildLogged(LoadOptions options, TextWriter log)
    {
        string testData = FindTestData();
        log.WriteLine($"building {options.Services} × {options.Variants} push bodies from {testData} ...");
        Corpus corpus = Build(options, testData);
        log.WriteLine($"  {corpus.BodyBytes / 1e6:0.0} MB of gzipped pprof, mean {corpus.MeanStacksPerBody:N0} stacks per push");
        return corpus;
    }

    public static Corpus Build(LoadOptions options, string testData)
    {
        var bodies = new List<byte[]>[options.Services];
        var names = new List<string>();
        long bytes = 0, stacks = 0;
        List<(string Stack, ulong Value)> program = ReadStacks(Path.Combine(testData, Program));
        for (int s = 0; s < options.Services; s++)
        {
            // A service's program: a random share (--subset) of the big profile's stacks plus one smaller real profile.
            string extra = Extras[s % Extras.Length];
            names.Add($"{Program} ({options.Subset:0.##} of its stacks) + {extra}");
            var random = new Random(Seeds.Of(options.Seed, s));
            List<(string Stack, ulong Value)> all = [.. program.Where(_ => random.NextDouble() < options.Subset), .. ReadStacks(Path.Combine(testData, extra))];
            bodies[s] = [];
            for (int v = 0; v < options.Variants; v++)
            {
                using var store = new TreeStore();
                ProfileTree tree = store.CreateTree();
                // One push: --stacks-per-push stacks of the program (a 10 s profile samples part of it).
                double share = Math.Min(1.0, options.StacksPerPush / (double)all.Count);
                foreach (var (stack, value) in all)
                {
                    if (random.NextDouble() >= share) continue;
                    string pushed = stack;
                    if (random.NextDouble() < options.Rename)
                    {
                        // A new leaf name per variant: the node is new in every coarse bucket this variant reaches.
                        int leaf = stack.LastIndexOf(';');
                        pushed = stack[..(leaf + 1)] + $"{stack[(leaf + 1)..]}@v{v}";
                    }
                    tree.Insert(Encoding.UTF8.GetBytes(pushed), value * (ulong)random.Next(1, 5));
                    stacks++;
                }
                using var body = new MemoryStream();
                PprofFormat.Export(tree, body, new PprofExportOptions
                {
                    SampleType = "cpu",
                    SampleUnit = "nanoseconds",
                    PeriodType = new PprofValueType("cpu", "nanoseconds"),
                    Period = 10_000_000,
                });
                bodies[s].Add(body.ToArray());
                bytes += body.Length;
            }
        }
        return new Corpus(bodies, names, bytes, stacks / Math.Max(1, options.Services * options.Variants));
    }

    /// <summary>(stack, self) of every node with self &gt; 0 of a real file, read through the library's readers.</summary>
    private static List<(string, ulong)> ReadStacks(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"shared test data missing: {path}");
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        using (FileStream input = File.OpenRead(path))
        {
            if (path.Contains("/pprof/", StringComparison.Ordinal)) PprofFormat.Import(input, tree);
            else FoldedFormat.Import(input, tree);
        }
        var list = new List<(string, ulong)>();
        tree.Iterate((stack, self, _) =>
        {
            if (self > 0) list.Add((Encoding.UTF8.GetString(stack), self));
        });
        return list;
    }
}

/// <summary>Seeds derived from --seed: the same in every process (HashCode.Combine is randomised per process, so the
/// corpus and the push order differed from run to run until 2026-11-30; now two runs with one seed send the same bytes).</summary>
internal static class Seeds
{
    /// <summary>A seed for <paramref name="seed"/> and the parts (SplitMix64's finaliser over each in turn).</summary>
    public static int Of(int seed, long a, long b = 0)
    {
        ulong h = (ulong)seed;
        foreach (long part in (ReadOnlySpan<long>)[a, b])
        {
            h += 0x9E3779B97F4A7C15UL + (ulong)part;
            h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9UL;
            h = (h ^ (h >> 27)) * 0x94D049BB133111EBUL;
            h ^= h >> 31;
        }
        return (int)(h & int.MaxValue);
    }
}
