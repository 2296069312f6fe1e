using System.Globalization;

namespace ProfileArena.ServerLoad;

/// <summary>Command-line options of the load run. Every loop is bounded by <see cref="MaxWallSeconds"/> and a count.</summary>
public sealed class LoadOptions
{
    /// <summary>Engines to run, in order, each in its own server process (default arena then baseline).</summary>
    public List<string> Engines { get; set; } = ["arena", "baseline"];
    /// <summary>Stop ingest once the server reports this many stored nodes (/metrics).</summary>
    public long TargetNodes { get; set; } = 5_000_000;
    /// <summary>Simulated time span covered by the pushes, seconds (ends at the real now; 10 s per tick).</summary>
    public long SimulatedSeconds { get; set; } = 24 * 3600;
    /// <summary>Where the simulated span starts within a 10,000 s block (the largest piece a 24 h range is cut into):
    /// the start is moved back to a 10,000 s boundary plus this many seconds, so every run meets the same bucket
    /// boundaries at the same point of its data (a run then compares with another; with the start at the real now less
    /// the span, whether and when a run crossed a 1,000 s boundary was the luck of the hour). −1: unaligned.</summary>
    public long StartPhaseSeconds { get; set; } = 800;
    /// <summary>Services (apps); each pushes its own real profile family.</summary>
    public int Services { get; set; } = 5;
    /// <summary>Label sets per service (series per service per type).</summary>
    public int LabelSets { get; set; } = 8;
    /// <summary>Concurrent ingest connections.</summary>
    public int Connections { get; set; } = 4;
    /// <summary>Concurrent /render query connections.</summary>
    public int QueryConnections { get; set; } = 2;
    /// <summary>Bodies pre-built per service (each a different subset, scaling and renaming).</summary>
    public int Variants { get; set; } = 48;
    /// <summary>Share of large.cpu's stacks in one service's program.</summary>
    public double Subset { get; set; } = 0.5;
    /// <summary>Stacks in one push (drawn from the service's program).</summary>
    public int StacksPerPush { get; set; } = 1000;
    /// <summary>Share of stacks whose leaf frame gets a variant-specific name (new nodes grow at this rate).</summary>
    public double Rename { get; set; } = 0.03;
    /// <summary>Hard limit of one engine's run, seconds (ingest stops at it whatever the target).</summary>
    public int MaxWallSeconds { get; set; } = 600;
    /// <summary>Pushes per second over all connections (0 = as fast as the server takes them).</summary>
    public double PushRate { get; set; }
    /// <summary>Open loop: with <see cref="PushRate"/>, pushes are sent on schedule whatever the answers (arrivals
    /// independent of responses; latency from the due time), instead of by N connections each waiting for its answer.</summary>
    public bool OpenLoop { get; set; }
    /// <summary>Open loop: most pushes in flight at once (each on its own connection); past it the schedule waits.</summary>
    public int MaxInFlight { get; set; } = 256;
    /// <summary>Seconds between rows of the report over time.</summary>
    public int SampleSeconds { get; set; } = 5;
    /// <summary>Seconds from the start of the load that the steady-state figures leave out (JIT, pools and caches warming,
    /// the first collections promoting what they keep); the whole-window figures keep them. 0: no steady-state figures.</summary>
    public int WarmupSeconds { get; set; } = 20;
    /// <summary>Seed of every random choice: the same seed gives both engines the same pushes in the same order.</summary>
    public int Seed { get; set; } = 1;
    /// <summary>Take an EventPipe heap snapshot at the end (live objects).</summary>
    public bool HeapSnapshot { get; set; } = true;
    /// <summary>Output directory for serverload.json, serverload.md and serverload.png.</summary>
    public string Output { get; set; } = "serverload-out";
    /// <summary>Extra arguments for the server (e.g. --Storage:MaxNativeBytes=…).</summary>
    public List<string> ServerArgs { get; set; } = [];
    /// <summary>Extra environment variables of the server process (e.g. DOTNET_GCLOHThreshold=…), K=V.</summary>
    public Dictionary<string, string> ServerEnvironment { get; set; } = [];
    /// <summary>After ingest stops: seconds of /render on one connection with nothing else running (render cost without contention).</summary>
    public int QuietRenderSeconds { get; set; }
    /// <summary>Collect allocation ticks too (verbose GC events): the report names the types allocated on the large object heap.</summary>
    public bool AllocationTicks { get; set; }
    /// <summary>Renders per second on a fixed schedule (open loop, like --open-loop for pushes) instead of the
    /// --query-connections closed loops: render k is sent at k / R s whatever the answers, latency counted from its due
    /// time; 0 = the closed loops.</summary>
    public double RenderRate { get; set; }
    /// <summary>Soak: keep ingesting for MaxWallSeconds after the target is reached (retention holds size flat).</summary>
    public bool Soak { get; set; }

    public static LoadOptions Parse(string[] args)
    {
        var o = new LoadOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{a} needs a value");
            long Long() => long.Parse(Next().Replace("_", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);
            switch (a)
            {
                case "--engines": o.Engines = [.. Next().Split(',', StringSplitOptions.RemoveEmptyEntries)]; break;
                case "--target-nodes": o.TargetNodes = Long(); break;
                case "--simulated-hours": o.SimulatedSeconds = (long)(double.Parse(Next(), CultureInfo.InvariantCulture) * 3600); break;
                case "--start-phase": o.StartPhaseSeconds = Long(); break;
                case "--services": o.Services = (int)Long(); break;
                case "--label-sets": o.LabelSets = (int)Long(); break;
                case "--connections": o.Connections = (int)Long(); break;
                case "--query-connections": o.QueryConnections = (int)Long(); break;
                case "--variants": o.Variants = (int)Long(); break;
                case "--subset": o.Subset = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--stacks-per-push": o.StacksPerPush = (int)Long(); break;
                case "--rename": o.Rename = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--max-seconds": o.MaxWallSeconds = (int)Long(); break;
                case "--push-rate": o.PushRate = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--open-loop": o.OpenLoop = true; break;
                case "--render-rate": o.RenderRate = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--max-in-flight": o.MaxInFlight = (int)Long(); break;
                case "--sample-seconds": o.SampleSeconds = (int)Long(); break;
                case "--warmup-seconds": o.WarmupSeconds = (int)Long(); break;
                case "--seed": o.Seed = (int)Long(); break;
                case "--no-heap-snapshot": o.HeapSnapshot = false; break;
                case "--soak": o.Soak = true; break;
                case "--allocation-ticks": o.AllocationTicks = true; break;
                case "--quiet-render-seconds": o.QuietRenderSeconds = (int)Long(); break;
                case "--out": o.Output = Next(); break;
                case "--server-arg": o.ServerArgs.Add(Next()); break;
                case "--server-env":
                {
                    string kv = Next();
                    int eq = kv.IndexOf('=');
                    if (eq <= 0) throw new ArgumentException("--server-env K=V");
                    o.ServerEnvironment[kv[..eq]] = kv[(eq + 1)..];
                    break;
                }
                case "-h" or "--help": throw new ArgumentException(Usage);
                default: throw new ArgumentException($"unknown option {a}\n{Usage}");
            }
        }
        if (o.Engines.Any(e => e is not ("arena" or "baseline"))) throw new ArgumentException("--engines: arena and/or baseline");
        if (o.StacksPerPush < 1 || o.Services < 1 || o.LabelSets < 1 || o.Connections < 1 || o.QueryConnections < 0 || o.Variants < 1) throw new ArgumentException("sizes must be positive");
        if (o.Subset is <= 0 or > 1 || o.Rename is < 0 or > 1) throw new ArgumentException("--subset in (0,1], --rename in [0,1]");
        if (o.MaxWallSeconds < 5 || o.SampleSeconds < 1) throw new ArgumentException("--max-seconds ≥ 5, --sample-seconds ≥ 1");
        if (o.WarmupSeconds < 0 || o.WarmupSeconds >= o.MaxWallSeconds) throw new ArgumentException("--warmup-seconds in [0, --max-seconds)");
        if (o.OpenLoop && (o.PushRate <= 0 || o.Soak)) throw new ArgumentException("--open-loop needs --push-rate P > 0 and no --soak");
        if (o.RenderRate < 0 || o.RenderRate > 1000) throw new ArgumentException("--render-rate in [0, 1000]");
        if (o.MaxInFlight < 1) throw new ArgumentException("--max-in-flight ≥ 1");
        if (o.SimulatedSeconds < 3600) throw new ArgumentException("--simulated-hours ≥ 1");
        if (o.StartPhaseSeconds != -1 && (o.StartPhaseSeconds is < 0 or >= 10_000 || o.StartPhaseSeconds % 10 != 0)) throw new ArgumentException("--start-phase: a multiple of 10 in [0, 10000), or −1");
        return o;
    }

    public const string Usage = """
        ProfileArena.ServerLoad: drives the server (a child process per engine) with pprof pushes and /render queries.
          --engines arena,baseline   --target-nodes N   --simulated-hours H (24)   --services K (5)   --label-sets L (8)
          --start-phase S (800: the span starts S s into a 10,000 s block, the same bucket boundaries in every run; −1: ends at the real now)
          --connections N (4)   --query-connections Q (2)   --variants V (48)   --subset S (0.5)   --stacks-per-push (1000)   --rename R (0.03)
          --max-seconds T (600, per engine)   --push-rate P (0 = unbounded)   --sample-seconds (5)   --seed (1)
          --open-loop (with --push-rate: send on schedule whatever the answers; latency from the due time)   --max-in-flight (256)
          --render-rate R (0: the query connections' closed loops; R > 0: R renders/s on schedule, latency from the due time)
          --quiet-render-seconds S (0: after ingest, S s of renders alone on one connection)
          --warmup-seconds W (20: the steady-state figures leave out the first W s; the whole-window figures keep them; 0: none)
          --allocation-ticks (the server's allocations by type, from the runtime's allocation ticks)
          --no-heap-snapshot   --soak   --out DIR   --server-arg ARG (repeatable, passed to the server)   --server-env K=V (repeatable)
        """;
}
