using System.Globalization;
using ProfileArena.ServerLoad;

namespace ProfileArena.ClusterPerf;

/// <summary>Command-line options. Every phase is bounded in time and in count.</summary>
public sealed class ClusterOptions
{
    public const string Usage = """
        ProfileArena.ClusterPerf: the server as 1 process (Cluster:Mode=None) and as N silos (Cluster:Mode=Redis, redis-server
        started on a free loopback port), same pprof pushes: ingest and 1 h render under load, fan-out render cost, kill -9 failover.
          --load-seconds S (60 per configuration)   --silos N (3)   --preload-ticks T (2)   --fan-out-renders R (20)
          --failover-seconds S (120)   --services K (5)   --label-sets L (8)   --variants V (12)   --stacks-per-push (1000)   --seed (1)
          --connections N (4)   --query-connections Q (1)   --out DIR   --server-arg ARG (repeatable, every server process)
          --rebalance: instead, the rebalancing scenario (preload into 1 silo, N−1 silos join, time until bytes settle)
          --rebalance-seconds S (300: longest wait for it to settle)
        """;

    /// <summary>Seconds of concurrent ingest + 1 h renders per configuration.</summary>
    public int LoadSeconds { get; set; } = 60;
    /// <summary>Silos of the cluster configuration.</summary>
    public int Silos { get; set; } = 3;
    /// <summary>Ticks (10 s of simulated time each, every series once per tick) of the fixed data set both
    /// configurations receive before the fan-out renders.</summary>
    public int PreloadTicks { get; set; } = 2;
    /// <summary>Sequential renders of the fixed data set (single server against a silo).</summary>
    public int FanOutRenders { get; set; } = 20;
    /// <summary>Longest wait for the first correct render after the kill.</summary>
    public int FailoverSeconds { get; set; } = 120;
    /// <summary>Services, label sets, bodies, stacks per push, seed: the corpus (ServerLoad's).</summary>
    public LoadOptions Corpus { get; } = new() { Variants = 12 };
    /// <summary>Concurrent ingest connections (spread over the silos' HTTP ports).</summary>
    public int Connections { get; set; } = 4;
    /// <summary>Concurrent 1 h render connections during the load.</summary>
    public int QueryConnections { get; set; } = 1;
    /// <summary>Output directory: cluster.md, cluster.json, the servers' logs.</summary>
    public string Output { get; set; } = "clusterperf-out";
    /// <summary>Runs the rebalancing scenario instead (<c>Rebalance.cs</c>): data on one silo, then more silos join.</summary>
    public bool Rebalance { get; set; }

    /// <summary>Longest wait for the rebalancing to settle.</summary>
    public int RebalanceSeconds { get; set; } = 300;

    /// <summary>Extra server arguments (every process).</summary>
    public List<string> ServerArgs { get; set; } = [];

    /// <summary>The options, or null after writing what is wrong (and the usage) to <paramref name="error"/>.</summary>
    public static ClusterOptions? TryParse(string[] args, TextWriter error)
    {
        try
        {
            return Parse(args);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
        {
            error.WriteLine(e.Message);
            return null;
        }
    }

    public static ClusterOptions Parse(string[] args)
    {
        var o = new ClusterOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{a} needs a value");
            int Int() => int.Parse(Next(), CultureInfo.InvariantCulture);
            switch (a)
            {
                case "--load-seconds": o.LoadSeconds = Int(); break;
                case "--silos": o.Silos = Int(); break;
                case "--preload-ticks": o.PreloadTicks = Int(); break;
                case "--fan-out-renders": o.FanOutRenders = Int(); break;
                case "--failover-seconds": o.FailoverSeconds = Int(); break;
                case "--services": o.Corpus.Services = Int(); break;
                case "--label-sets": o.Corpus.LabelSets = Int(); break;
                case "--variants": o.Corpus.Variants = Int(); break;
                case "--stacks-per-push": o.Corpus.StacksPerPush = Int(); break;
                case "--seed": o.Corpus.Seed = Int(); break;
                case "--connections": o.Connections = Int(); break;
                case "--query-connections": o.QueryConnections = Int(); break;
                case "--out": o.Output = Next(); break;
                case "--server-arg": o.ServerArgs.Add(Next()); break;
                case "--rebalance": o.Rebalance = true; break;
                case "--rebalance-seconds": o.RebalanceSeconds = Int(); break;
                case "-h" or "--help": throw new ArgumentException(Usage);
                default: throw new ArgumentException($"unknown option {a}\n{Usage}");
            }
        }
        if (o.LoadSeconds is < 5 or > 3600 || o.FailoverSeconds is < 5 or > 600) throw new ArgumentException("--load-seconds in [5, 3600], --failover-seconds in [5, 600]");
        if (o.RebalanceSeconds is < 10 or > 3600) throw new ArgumentException("--rebalance-seconds in [10, 3600]");
        if (o.Silos is < 2 or > 8) throw new ArgumentException("--silos in [2, 8] (one is killed; the others must survive)");
        if (o.PreloadTicks is < 1 or > 360 || o.FanOutRenders is < 1 or > 10_000) throw new ArgumentException("--preload-ticks in [1, 360], --fan-out-renders in [1, 10000]");
        if (o.Connections < 1 || o.QueryConnections < 0 || o.Corpus.Services < 1 || o.Corpus.LabelSets < 1 || o.Corpus.Variants < 1 || o.Corpus.StacksPerPush < 1)
            throw new ArgumentException("sizes must be positive");
        return o;
    }
}
