using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.TestingHost;
using ProfileArena.Formats;
using ProfileArena.Server.Cluster;
using ProfileArena.Server.Storage;
using ProfileArena.Tests.Server.Storage;

namespace ProfileArena.Tests.Server.Cluster;

/// <summary>
/// An in-process Orleans cluster (TestingHost's <see cref="InProcessTestCluster"/>) whose silos serve shard grains
/// as the real server's do (<c>ClusterServiceCollectionExtensions.AddShardGrains</c>), all over one data
/// directory, so a shard can move between silos. Every silo has its own <see cref="IProfileStorage"/> (the
/// routing <c>ClusterProfileStorage</c>): tests ingest through one silo and query through another.
/// </summary>
public sealed class ShardCluster : IAsyncDisposable
{
    private readonly TempDataDir _dir;

    private ShardCluster(InProcessTestCluster cluster, TempDataDir dir, StorageOptions options, ProfileClusterOptions clusterOptions)
    {
        Cluster = cluster;
        _dir = dir;
        Options = options;
        ClusterOptions = clusterOptions;
    }

    /// <summary>The <c>Cluster:</c> options every silo shares (one object: a test may change a setting the silos read at each use).</summary>
    internal ProfileClusterOptions ClusterOptions { get; }

    public InProcessTestCluster Cluster { get; }

    public StorageOptions Options { get; }

    /// <param name="silos">Silos started.</param>
    /// <param name="shards">Storage:ShardCount.</param>
    /// <param name="chunkBytes">Cluster:MessageChunkBytes (small: partial trees travel in pieces).</param>
    /// <param name="maxPartialNodes">The partial trees' node cap.</param>
    /// <param name="configure">Changes the other <c>Cluster:</c> options (call timeout, query deadline, …) before the silos start.</param>
    /// <param name="services">Adds services to every silo before the shard grains' (a test's <c>ShardGrainHooks</c>).</param>
    public static async Task<ShardCluster> Start(int silos = 3, int shards = 4, int chunkBytes = 64 << 10, long maxPartialNodes = 5_000_000,
        Action<ProfileClusterOptions>? configure = null, Action<IServiceCollection>? services = null)
    {
        var dir = new TempDataDir();
        StorageOptions options = StorageTestKit.Options(dir.Path, shards);
        var cluster = new ProfileClusterOptions { MessageChunkBytes = chunkBytes, CallTimeoutSeconds = 30, MaxPartialNodes = maxPartialNodes };
        configure?.Invoke(cluster);
        cluster.Validate();
        var builder = new InProcessTestClusterBuilder((short)silos);
        builder.ConfigureSilo((_, silo) =>
        {
            services?.Invoke(silo.Services);
            ClusterServiceCollectionExtensions.AddShardGrains(silo, options, cluster);
        });
        builder.ConfigureHost(host => host.Logging.SetMinimumLevel(LogLevel.Warning));
        InProcessTestCluster built = builder.Build();
        try
        {
            await built.DeployAsync(TestContext.Current.CancellationToken);
        }
        catch
        {
            await built.DisposeAsync();
            dir.Dispose();
            throw;
        }
        return new ShardCluster(built, dir, options, cluster);
    }

    public IReadOnlyList<InProcessSiloHandle> Silos => Cluster.Silos;

    /// <summary>The routing storage of silo <paramref name="silo"/> (what its HTTP layer would call).</summary>
    public IProfileStorage Storage(int silo) => Cluster.Silos[silo].ServiceProvider.GetRequiredService<IProfileStorage>();

    internal static LocalShards Local(InProcessSiloHandle silo) => silo.ServiceProvider.GetRequiredService<LocalShards>();

    internal static ShardQueryTickets Tickets(InProcessSiloHandle silo) => silo.ServiceProvider.GetRequiredService<ShardQueryTickets>();

    public IShardGrain Grain(string key) => Cluster.Client.GetGrain<IShardGrain>(key);

    /// <summary>Silo <paramref name="silo"/>'s view of every silo's storage bytes.</summary>
    internal static ShardLoadTable Table(InProcessSiloHandle silo) => silo.ServiceProvider.GetRequiredService<ShardLoadTable>();

    internal static ShardRebalancer Rebalancer(InProcessSiloHandle silo) => silo.ServiceProvider.GetRequiredService<ShardRebalancer>();

    /// <summary>The silo whose registry holds the active shard <paramref name="key"/>, or null.</summary>
    public InProcessSiloHandle? SiloOf(string key) => Cluster.Silos.FirstOrDefault(s => s.IsActive && Local(s).Keys.Contains(key));

    public async ValueTask DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
        _dir.Dispose();
    }
}

/// <summary>Everything the HTTP layer makes of one query, as bytes: render JSON (with timeline and metadata),
/// folded text and top functions by self and total; plus the result's counts.</summary>
public static class QueryBytes
{
    public static async Task<string> Render(IProfileStorage storage, string tenant, SeriesSelector selector, long from, long until)
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        QueryResult result = await storage.QueryAsync(tenant, selector, from, until, tree);
        var text = new StringBuilder();
        text.Append($"series={result.Series} merged={result.TreesMerged} meta={result.Metadata}\n");
        using (var json = new MemoryStream())
        {
            FlamebearerFormat.Export(tree, json, new FlamebearerOptions
            {
                Name = selector.Name,
                Units = result.Metadata.Units,
                SampleRate = result.Metadata.SampleRate,
                SpyName = result.Metadata.SpyName,
                WriteTimeline = true,
                Timeline = new FlamebearerTimeline(result.Timeline.StartTime, result.Timeline.DurationDelta, result.Timeline.Samples),
            });
            text.Append(Encoding.UTF8.GetString(json.ToArray())).Append('\n');
        }
        using (var folded = new MemoryStream())
        {
            FoldedFormat.Export(tree, folded);
            text.Append(Encoding.UTF8.GetString(folded.ToArray())).Append('\n');
        }
        foreach (TopBy by in new[] { TopBy.Self, TopBy.Total })
            text.AppendJoin(';', FunctionTotals.Top(tree, 20, by).Select(f => $"{f.Name}:{f.Self}:{f.Total}")).Append('\n');
        return text.ToString();
    }

    public static async Task<string> Diff(IProfileStorage storage, string tenant, SeriesSelector left, SeriesSelector right, long from, long middle, long until)
    {
        using var store = new TreeStore();
        ProfileTree l = store.CreateTree(), r = store.CreateTree();
        await storage.QueryAsync(tenant, left, from, middle, l);
        await storage.QueryAsync(tenant, right, middle, until, r);
        using var json = new MemoryStream();
        FlamebearerFormat.ExportDiff(l, r, json, new FlamebearerOptions { Name = left.Name });
        return Encoding.UTF8.GetString(json.ToArray());
    }

    public static async Task<string> Series(IProfileStorage storage, string tenant, SeriesSelector? selector, long from, long until) =>
        string.Join('\n', (await storage.SeriesAsync(tenant, selector, from, until)).Select(k => k.ToString()));
}
