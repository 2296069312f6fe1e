using System.Net;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Orleans.Configuration;
using ProfileArena.Server.Storage;
using StackExchange.Redis;

namespace ProfileArena.Server.Cluster;

/// <summary>
/// Chooses the server's storage from <c>Cluster:Mode</c>: None (default) is the single-process
/// <see cref="ProfileStorage"/> with no Orleans at all; AzureStorage or Redis co-hosts an Orleans silo in the
/// server process, whose <see cref="IProfileStorage"/> is <see cref="ClusterProfileStorage"/> over shard grains.
/// </summary>
public static class ClusterServiceCollectionExtensions
{
    /// <summary>Registers the single node's storage or the cluster's, per <c>Cluster:Mode</c>.</summary>
    public static IServiceCollection AddProfileStorageOrCluster(this IServiceCollection services, IConfiguration configuration)
    {
        ProfileClusterOptions cluster = ProfileClusterOptions.From(configuration.GetSection(ProfileClusterOptions.Section));
        if (cluster.Mode == ClusterMode.None) return services.AddProfileStorage(configuration);
        StorageOptions storage = StorageOptions.From(configuration.GetSection(StorageOptions.Section));
        var limits = configuration.GetSection(Hosting.ServerOptions.Section).Get<Hosting.ServerOptions>() ?? new Hosting.ServerOptions();
        cluster.MaxPartialNodes = limits.MaxQueryNodes;
        cluster.MaxPartialNativeBytes = limits.MaxQueryNativeBytes;
        services.AddOrleans(silo =>
        {
            switch (cluster.Mode)
            {
                case ClusterMode.Redis:
                    silo.UseRedisClustering(o => o.ConfigurationOptions = ConfigurationOptions.Parse(cluster.ConnectionString!));
                    break;
                case ClusterMode.AzureStorage:
                    silo.UseAzureStorageClustering(o => o.TableServiceClient = new Azure.Data.Tables.TableServiceClient(cluster.ConnectionString));
                    break;
            }
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = cluster.ClusterId;
                o.ServiceId = cluster.ServiceId;
            });
            silo.Configure<ClusterMembershipOptions>(o => ApplyMembership(o, cluster));
            // Listen on the advertised address only (loopback by default), never on every interface.
            silo.ConfigureEndpoints(IPAddress.Parse(cluster.AdvertisedAddress), cluster.SiloPort, cluster.GatewayPort, listenOnAnyHostAddress: false);
            AddShardGrains(silo, storage, cluster);
        });
        return services;
    }

    /// <summary>The membership timeouts set in <c>Cluster:</c> (README "Running a cluster": production keeps Orleans'
    /// defaults, the multi-process tests shorten them); a key left out keeps Orleans' value.</summary>
    internal static void ApplyMembership(ClusterMembershipOptions o, ProfileClusterOptions cluster)
    {
        if (cluster.ProbeTimeoutSeconds is { } probe) o.ProbeTimeout = TimeSpan.FromSeconds(probe);
        if (cluster.NumMissedProbesLimit is { } missed) o.NumMissedProbesLimit = missed;
        if (cluster.NumVotesForDeathDeclaration is { } votes) o.NumVotesForDeathDeclaration = votes;
        if (cluster.DeathVoteExpirationSeconds is { } expiry) o.DeathVoteExpirationTimeout = TimeSpan.FromSeconds(expiry);
        if (cluster.IAmAliveTablePublishSeconds is { } alive) o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(alive);
        if (cluster.TableRefreshSeconds is { } refresh) o.TableRefreshTimeout = TimeSpan.FromSeconds(refresh);
    }

    /// <summary>What every silo serving shard grains needs, the real server's and the tests' in-process ones:
    /// the options, this silo's shard registry and budget, the routing storage, readiness, the call timeout.</summary>
    internal static void AddShardGrains(ISiloBuilder silo, StorageOptions storage, ProfileClusterOptions cluster)
    {
        IServiceCollection services = silo.Services;
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(storage);
        services.AddSingleton(cluster);
        services.AddSingleton<LocalShards>();
        services.AddSingleton<ShardQueryTickets>();
        services.TryAddSingleton<ShardGrainHooks>(); // tests register theirs first
        services.AddSingleton(sp => new ClusterProfileStorage(sp.GetRequiredService<IGrainFactory>(), storage, cluster, sp.GetRequiredService<LocalShards>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IProfileStorage>(sp => sp.GetRequiredService<ClusterProfileStorage>());
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, ClusterReadiness>();
        // Placement and rebalancing by storage bytes (README "Running a cluster").
        services.AddSingleton<ShardLoadClient>();
        services.AddSingleton<ShardLoadTable>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<ShardLoadTable>());
        services.AddSingleton<ShardRebalancer>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<ShardRebalancer>());
        services.AddGrainService<ShardLoadService>();
        services.AddPlacementDirector<ShardBytesPlacement, ShardBytesPlacementDirector>();
        silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(cluster.CallTimeoutSeconds));
        silo.Configure<GrainCollectionOptions>(o => o.DeactivationTimeout = TimeSpan.FromSeconds(cluster.DeactivationTimeoutSeconds));
    }
}

/// <summary>Marks <see cref="ClusterProfileStorage"/> ready while the silo is active (it then routes to grains anywhere
/// in the cluster; /readyz answers 503 before and while it leaves).</summary>
internal sealed class ClusterReadiness(ClusterProfileStorage storage) : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) => lifecycle.Subscribe(nameof(ClusterReadiness), ServiceLifecycleStage.Active,
        _ =>
        {
            storage.SetReady(true);
            return Task.CompletedTask;
        },
        _ =>
        {
            storage.SetReady(false);
            return Task.CompletedTask;
        });
}
