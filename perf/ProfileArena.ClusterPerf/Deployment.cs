using System.Globalization;
using ProfileArena.Processes;
using ProfileArena.ServerLoad;

namespace ProfileArena.ClusterPerf;

/// <summary>
/// One configuration under test: the single server (<c>Cluster:Mode=None</c>) or N silos (<c>Cluster:Mode=Redis</c>,
/// one redis-server, one shared data directory, free loopback HTTP, silo and gateway ports), each a child process
/// started by ServerLoad's <see cref="ServerProcess"/>. One HTTP client per process; the load is spread over them.
/// </summary>
public sealed class Deployment : IDisposable
{
    private readonly RedisProcess? _redis;

    private Deployment(string name, string dataDir, List<ServerProcess> servers, RedisProcess? redis)
    {
        Name = name;
        DataDir = dataDir;
        Servers = servers;
        _redis = redis;
        Clients = [.. servers.Select(Client)];
    }

    private static HttpClient Client(ServerProcess s) => new(new SocketsHttpHandler { MaxConnectionsPerServer = 64, UseProxy = false })
    {
        BaseAddress = new Uri(s.Url),
        Timeout = TimeSpan.FromSeconds(60),
    };

    public string Name { get; }
    public string DataDir { get; }
    public List<ServerProcess> Servers { get; }
    public HttpClient[] Clients { get; private set; }
    public bool IsCluster => _redis != null;

    public static async Task<Deployment> StartSingleAsync(IEnumerable<string> serverArgs, TextWriter log)
    {
        string dataDir = FreshDir("single");
        log.WriteLine($"[single] starting the server (data {dataDir})");
        ServerProcess server = await ServerProcess.StartAsync("arena", dataDir, ["--Cluster:Mode=None", .. serverArgs], TimeSpan.FromSeconds(60));
        return new Deployment("1 silo (Cluster:Mode=None)", dataDir, [server], null);
    }

    public static async Task<Deployment> StartClusterAsync(int silos, IEnumerable<string> serverArgs, TextWriter log)
    {
        string dataDir = FreshDir("cluster");
        RedisProcess redis = await RedisProcess.StartAsync(dataDir + ".redis.log", TimeSpan.FromSeconds(20));
        log.WriteLine($"[cluster] redis-server on 127.0.0.1:{redis.Port}; starting {silos} silos (shared data {dataDir})");
        var servers = new List<ServerProcess>();
        try
        {
            // Started together (staggered so their log names, which carry the start time in ms, differ); each is
            // ready once /readyz answers 200, i.e. once it has joined the cluster.
            servers.AddRange(await StartSilosAsync(silos, dataDir, redis, serverArgs));
        }
        catch
        {
            redis.Dispose();
            throw;
        }
        return new Deployment($"{silos} silos (Cluster:Mode=Redis)", dataDir, servers, redis);
    }

    /// <summary>Starts <paramref name="silos"/> more silos that join this cluster (the rebalancing scenario).</summary>
    public async Task AddSilosAsync(int silos, IEnumerable<string> serverArgs)
    {
        List<ServerProcess> added = await StartSilosAsync(silos, DataDir, _redis ?? throw new InvalidOperationException("not a cluster"), serverArgs);
        Servers.AddRange(added);
        Clients = [.. Clients, .. added.Select(Client)];
    }

    private static async Task<List<ServerProcess>> StartSilosAsync(int silos, string dataDir, RedisProcess redis, IEnumerable<string> serverArgs)
    {
        var starts = new List<Task<ServerProcess>>();
        for (int i = 0; i < silos; i++)
        {
            string[] args =
            [
                "--Cluster:Mode=Redis", "--Cluster:ConnectionString=" + redis.ConnectionString,
                "--Cluster:SiloPort=" + ServerProcess.FreePort().ToString(CultureInfo.InvariantCulture),
                "--Cluster:GatewayPort=" + ServerProcess.FreePort().ToString(CultureInfo.InvariantCulture),
                .. serverArgs,
            ];
            int delay = i * 20;
            starts.Add(Task.Run(async () =>
            {
                await Task.Delay(delay);
                return await ServerProcess.StartAsync("arena", dataDir, args, TimeSpan.FromSeconds(120));
            }));
        }
        try
        {
            await Task.WhenAll(starts);
        }
        catch
        {
            foreach (Task<ServerProcess> t in starts.Where(o => o.IsCompletedSuccessfully)) t.Result.Dispose();
            throw;
        }
        return [.. starts.Select(t => t.Result)];
    }

    /// <summary>A gauge or counter of one process's /metrics (0 when absent; null when the process does not answer).</summary>
    public async Task<double?> Gauge(int server, string name)
    {
        try
        {
            string text = await Clients[server].GetStringAsync("/metrics");
            foreach (string line in text.Split('\n'))
            {
                if (line.StartsWith(name + " ", StringComparison.Ordinal))
                    return double.Parse(line[(name.Length + 1)..], CultureInfo.InvariantCulture);
            }
            return 0;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or FormatException)
        {
            return null;
        }
    }

    /// <summary>Sum of a gauge over the processes still running.</summary>
    public async Task<double> GaugeSum(string name)
    {
        double sum = 0;
        for (int i = 0; i < Servers.Count; i++)
        {
            if (!Servers[i].HasExited) sum += await Gauge(i, name) ?? 0;
        }
        return sum;
    }

    /// <summary>Copies each process's log into <paramref name="output"/>.</summary>
    public void CopyLogs(string output, string prefix)
    {
        for (int i = 0; i < Servers.Count; i++)
        {
            try { File.Copy(Servers[i].LogPath, Path.Combine(output, $"{prefix}-{i}.log"), overwrite: true); }
            catch (IOException) { }
        }
        if (_redis != null && File.Exists(DataDir + ".redis.log")) File.Copy(DataDir + ".redis.log", Path.Combine(output, $"{prefix}-redis.log"), overwrite: true);
    }

    public void Dispose()
    {
        foreach (ServerProcess s in Servers) s.Dispose();
        foreach (HttpClient c in Clients) c.Dispose();
        _redis?.Dispose();
        try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { }
    }

    private static string FreshDir(string name)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"pa-clusterperf-{Environment.ProcessId}-{name}");
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        return dir;
    }
}
