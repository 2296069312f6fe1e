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

    /// <summary>Grain call timeout (Orleans' default 30 s): a shard's write or query part that takes longer fails the call with 503.</summary>
    public int CallTimeoutSeconds { get; set; } = 30;

    /// <summary>Largest piece of a write payload or partial tree sent in one message (default 4 MiB, far below
    /// Orleans' 100 MB message cap): bigger ones go in pieces.</summary>
    public int MessageChunkBytes { get; set; } = 4 << 20;

    /// <summary>A prepared part of a call spanning shards whose commit has not come after this long is aborted
    /// (its receiving silo died between prepare and commit). Must exceed <see cref="CallTimeoutSeconds"/>.</summary>
    public int PreparedTimeoutSeconds { get; set; } = 120;

    /// <summary>Caps of a query's partial tree in a shard grain (the HTTP layer's <c>Server:MaxQueryNodes</c> and
    /// <c>MaxQueryNativeBytes</c>, copied at registration).</summary>
    public long MaxPartialNodes { get; set; } = 5_000_000;

    /// <inheritdoc cref="MaxPartialNodes"/>
    public long MaxPartialNativeBytes { get; set; } = 1L << 30;

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
    }
}
