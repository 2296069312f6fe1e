using System.Net;

namespace ProfileArena.Server.Cluster;

/// <summary>How silos find each other (<c>Cluster:Mode</c>).</summary>
public enum ClusterMode
{
    /// <summary>No cluster: the single-process server, no Orleans silo at all (the default).</summary>
    None,
    /// <summary>Orleans membership in an Azure Storage table (Azurite in tests): <c>Cluster:ConnectionString</c> is a storage connection string.</summary>
    AzureStorage,
    /// <summary>Orleans membership in Redis: <c>Cluster:ConnectionString</c> is a StackExchange.Redis configuration (<c>127.0.0.1:6379</c>).</summary>
    Redis,
}

/// <summary>The <c>Cluster</c> section (README "Running a cluster").</summary>
public sealed class ProfileClusterOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Cluster";

    /// <summary>None (default), AzureStorage or Redis.</summary>
    public ClusterMode Mode { get; set; } = ClusterMode.None;

    /// <summary>The membership store's connection string (required unless <see cref="Mode"/> is None).</summary>
    public string? ConnectionString { get; set; }

    /// <summary>Port of silo-to-silo traffic (Orleans' default 11111).</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Port for Orleans clients (Orleans' default 30000; the HTTP API needs none, the silo serves it itself).</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>Silos with the same ClusterId form one cluster.</summary>
    public string ClusterId { get; set; } = "profilearena";

    /// <summary>Identifies the deployment across cluster restarts (Orleans keys its storage by it).</summary>
    public string ServiceId { get; set; } = "profilearena";

    /// <summary>The address other silos reach this one at and the only one it listens on (loopback by default:
    /// one machine; give the host's address for several machines).</summary>
    public string AdvertisedAddress { get; set; } = "127.0.0.1";

    /// <summary>Grain call timeout (Orleans' ResponseTimeout, default 30 s): a shard's write that takes longer fails
    /// with 503. Queries are collected in calls shorter than this (<see cref="QueryTimeoutSeconds"/> bounds them).</summary>
    public int CallTimeoutSeconds { get; set; } = 30;

    /// <summary>Largest piece of a write payload or partial tree sent in one message (default 4 MiB, far below
    /// Orleans' 100 MB message cap): bigger ones go in pieces.</summary>
    public int MessageChunkBytes { get; set; } = 4 << 20;

    /// <summary>A prepared part of a call spanning shards whose commit has not come after this long is aborted
    /// (its receiving silo died between prepare and commit). Must exceed <see cref="CallTimeoutSeconds"/>.</summary>
    public int PreparedTimeoutSeconds { get; set; } = 120;

    /// <summary>Longest a query waits for all its shards (default 300 s). A shard's part runs in the background of
    /// its grain and the receiving silo collects it with short calls (each well under <see cref="CallTimeoutSeconds"/>),
    /// so a query may take longer than one call; past this deadline it answers 503 naming the shard that had not
    /// answered, and the shards' work is cancelled.</summary>
    public int QueryTimeoutSeconds { get; set; } = 300;

    /// <summary>A shard's finished query part that nobody collects for this long (its receiving silo died, or the
    /// query was abandoned) is dropped with its bytes (default 60 s; must exceed <see cref="CallTimeoutSeconds"/>:
    /// a collecting silo calls again every <see cref="CallTimeoutSeconds"/>/4 at most).</summary>
    public int QueryResultSeconds { get; set; } = 60;

    /// <summary>Bytes of finished query parts a silo holds for collection at most (default 1 GiB); a part that
    /// would pass it is dropped and its query answers 503.</summary>
    public long MaxPendingResultBytes { get; set; } = 1L << 30;

    /// <summary>How long a write, series lookup or query waits for its shard to finish loading (snapshot and WAL
    /// replay, in the background of the grain's activation) before answering 503 "loading, retry" with Retry-After
    /// (default 10 s; a write or series lookup waits at most half of <see cref="CallTimeoutSeconds"/>, being one call).</summary>
    public int LoadWaitSeconds { get; set; } = 10;

    /// <summary>How long a shard grain's deactivation may run (Orleans' <c>GrainCollectionOptions.DeactivationTimeout</c>,
    /// 30 s by default there; 600 s here): deactivation snapshots the shard and gives up its ownership, and a move or
    /// an idle collection whose snapshot Orleans abandoned half-way would let the next activation open the shard while
    /// the old one still writes its snapshot (fenced on Azure blobs, not on a local directory).</summary>
    public int DeactivationTimeoutSeconds { get; set; } = 600;

    /// <summary>How long one collecting call waits in the grain for a query part: a quarter of the call timeout,
    /// between 0.1 s and 5 s, so every call stays well under Orleans' ResponseTimeout.</summary>
    internal TimeSpan QueryPollWait => TimeSpan.FromSeconds(Math.Clamp(CallTimeoutSeconds / 4.0, 0.1, 5));

    /// <summary>How long a single call (write, series) waits for a loading shard.</summary>
    internal TimeSpan CallLoadWait => TimeSpan.FromSeconds(Math.Min(LoadWaitSeconds, CallTimeoutSeconds / 2.0));

    /// <summary>Orleans' liveness probe timeout (<c>ClusterMembershipOptions.ProbeTimeout</c>; null = Orleans' 5 s).
    /// A silo that misses <see cref="NumMissedProbesLimit"/> probes in a row is suspected.</summary>
    public double? ProbeTimeoutSeconds { get; set; }

    /// <summary>Missed probes that make a silo suspect (<c>NumMissedProbesLimit</c>; null = Orleans' 3).</summary>
    public int? NumMissedProbesLimit { get; set; }

    /// <summary>Suspicions needed to declare a silo dead (<c>NumVotesForDeathDeclaration</c>; null = Orleans' 2;
    /// Orleans needs fewer when fewer silos are alive to vote).</summary>
    public int? NumVotesForDeathDeclaration { get; set; }

    /// <summary>How long a suspicion counts (<c>DeathVoteExpirationTimeout</c>; null = Orleans' 120 s).</summary>
    public double? DeathVoteExpirationSeconds { get; set; }

    /// <summary>Period of a silo's heartbeat row in the membership table (<c>IAmAliveTablePublishTimeout</c>;
    /// null = Orleans' 30 s).</summary>
    public double? IAmAliveTablePublishSeconds { get; set; }

    /// <summary>Period of re-reading the membership table (<c>TableRefreshTimeout</c>; null = Orleans' 60 s). A paused
    /// silo that wakes learns it was declared dead by gossip or at its next refresh, and then stops itself.</summary>
    public double? TableRefreshSeconds { get; set; }

    /// <summary>Caps of a query's partial tree in a shard grain (the HTTP layer's <c>Server:MaxQueryNodes</c> and
    /// <c>MaxQueryNativeBytes</c>, copied at registration).</summary>
    public long MaxPartialNodes { get; set; } = 5_000_000;

    /// <inheritdoc cref="MaxPartialNodes"/>
    public long MaxPartialNativeBytes { get; set; } = 1L << 30;

    /// <summary>Period of each silo's refresh of every silo's storage bytes (<see cref="ShardLoadTable"/>), which the
    /// shard placement and the rebalancer read (default 5 s). A figure older than three periods counts as missing.</summary>
    public double LoadRefreshSeconds { get; set; } = 5;

    /// <summary>Period of each silo's rebalancing check (<see cref="ShardRebalancer"/>; default 60 s; 0 disables): a silo
    /// holding clearly more storage bytes than the cluster's mean moves at most one shard grain per period to the
    /// silo holding the fewest.</summary>
    public double RebalanceIntervalSeconds { get; set; } = 60;

    /// <summary>"Clearly more": a silo is over when its bytes pass the mean by this ratio of the mean (default 0.25)
    /// and by <see cref="RebalanceMinBytes"/>; a move may not put its target over either line (hysteresis: a moved
    /// shard is never moved back by the same figures).</summary>
    public double RebalanceThresholdRatio { get; set; } = 0.25;

    /// <inheritdoc cref="RebalanceThresholdRatio"/>
    public long RebalanceMinBytes { get; set; } = 64L << 20;

    /// <summary>Options bound from <paramref name="section"/> and validated.</summary>
    public static ProfileClusterOptions From(IConfiguration section)
    {
        var options = new ProfileClusterOptions();
        section.Bind(options);
        options.Validate();
        return options;
    }

    /// <summary>Throws when a setting is out of range or missing.</summary>
    public void Validate()
    {
        if (Mode != ClusterMode.None && string.IsNullOrWhiteSpace(ConnectionString))
            throw new ArgumentException($"Cluster:Mode={Mode} needs Cluster:ConnectionString (the membership store)");
        if (SiloPort is < 1 or > 65535 || GatewayPort is < 1 or > 65535 || SiloPort == GatewayPort)
            throw new ArgumentException($"Cluster:SiloPort ({SiloPort}) and Cluster:GatewayPort ({GatewayPort}) must be distinct ports 1…65535");
        if (!IPAddress.TryParse(AdvertisedAddress, out _))
            throw new ArgumentException($"Cluster:AdvertisedAddress must be an IP address, not '{AdvertisedAddress}'");
        if (string.IsNullOrWhiteSpace(ClusterId) || string.IsNullOrWhiteSpace(ServiceId))
            throw new ArgumentException("Cluster:ClusterId and Cluster:ServiceId must not be empty");
        if (CallTimeoutSeconds < 1) throw new ArgumentException("Cluster:CallTimeoutSeconds must be at least 1");
        if (MessageChunkBytes is < 1 << 16 or > 64 << 20) throw new ArgumentException("Cluster:MessageChunkBytes must be 64 KiB…64 MiB");
        if (PreparedTimeoutSeconds <= CallTimeoutSeconds) throw new ArgumentException("Cluster:PreparedTimeoutSeconds must exceed Cluster:CallTimeoutSeconds");
        if (QueryTimeoutSeconds is < 1 or > 86_400) throw new ArgumentException($"Cluster:QueryTimeoutSeconds must be 1…86400, not {QueryTimeoutSeconds}");
        if (QueryResultSeconds <= CallTimeoutSeconds) throw new ArgumentException("Cluster:QueryResultSeconds must exceed Cluster:CallTimeoutSeconds");
        if (MaxPendingResultBytes < 64 << 10) throw new ArgumentException("Cluster:MaxPendingResultBytes must be at least 64 KiB");
        if (LoadWaitSeconds is < 0 or > 86_400) throw new ArgumentException($"Cluster:LoadWaitSeconds must be 0…86400, not {LoadWaitSeconds}");
        if (DeactivationTimeoutSeconds is < 1 or > 86_400) throw new ArgumentException($"Cluster:DeactivationTimeoutSeconds must be 1…86400, not {DeactivationTimeoutSeconds}");
        foreach ((string key, double? seconds) in new[]
                 {
                     (nameof(ProbeTimeoutSeconds), ProbeTimeoutSeconds), (nameof(DeathVoteExpirationSeconds), DeathVoteExpirationSeconds),
                     (nameof(IAmAliveTablePublishSeconds), IAmAliveTablePublishSeconds), (nameof(TableRefreshSeconds), TableRefreshSeconds),
                 })
        {
            if (seconds is { } s && !(s is >= 0.1 and <= 86_400))
                throw new ArgumentException($"Cluster:{key} must be 0.1…86400 seconds (or left out for Orleans' default), not {s}");
        }
        if (!(LoadRefreshSeconds is >= 0.05 and <= 3600)) throw new ArgumentException($"Cluster:LoadRefreshSeconds must be 0.05…3600, not {LoadRefreshSeconds}");
        if (!(RebalanceIntervalSeconds == 0 || RebalanceIntervalSeconds is >= 0.05 and <= 86_400))
            throw new ArgumentException($"Cluster:RebalanceIntervalSeconds must be 0 (off) or 0.05…86400, not {RebalanceIntervalSeconds}");
        if (!(RebalanceThresholdRatio is >= 0 and <= 100)) throw new ArgumentException($"Cluster:RebalanceThresholdRatio must be 0…100, not {RebalanceThresholdRatio}");
        if (RebalanceMinBytes < 0) throw new ArgumentException($"Cluster:RebalanceMinBytes must not be negative, not {RebalanceMinBytes}");
        if (NumMissedProbesLimit is < 1 or > 100) throw new ArgumentException($"Cluster:NumMissedProbesLimit must be 1…100, not {NumMissedProbesLimit}");
        if (NumVotesForDeathDeclaration is < 1 or > 100) throw new ArgumentException($"Cluster:NumVotesForDeathDeclaration must be 1…100, not {NumVotesForDeathDeclaration}");
        if (Mode == ClusterMode.AzureStorage) CheckAzureStorageConnectionString(ConnectionString!);
    }

    /// <summary>A connection string the Azure Tables client cannot read fails here, at startup, with the key named
    /// (otherwise the silo would fail later, deep inside Orleans' membership start).</summary>
    private static void CheckAzureStorageConnectionString(string connectionString)
    {
        try
        {
            _ = new Azure.Data.Tables.TableServiceClient(connectionString);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException or UriFormatException)
        {
            // The connection string holds the account key: name the problem, never echo the string.
            throw new ArgumentException($"Cluster:ConnectionString is not an Azure Storage connection string with a table endpoint (Cluster:Mode=AzureStorage): {e.GetType().Name}: {e.Message.Split('\n')[0]}");
        }
    }
}
