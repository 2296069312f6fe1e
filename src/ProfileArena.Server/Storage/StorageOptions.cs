using Microsoft.Extensions.Configuration;

namespace ProfileArena.Server.Storage;

/// <summary>
/// Configuration of the server's storage, bound from the <c>Storage</c> section
/// (<c>--Storage:ShardCount=8</c>, <c>Storage__MaxNativeBytes=…</c>, appsettings.json). native-notes.md,
/// "Server storage", explains what each setting changes.
/// </summary>
public sealed class StorageOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "Storage";

    /// <summary>Root of all data: <c>DataDir/&lt;tenant dir&gt;/shard-N/</c> (the HTTP side maps <c>--data-dir</c> here).</summary>
    public string DataDir { get; set; } = "./data";

    /// <summary>Where trees live (<c>--storage arena|baseline</c>): <c>arena</c> = native <see cref="TreeStore"/>s;
    /// <c>baseline</c> = object-per-node <c>BaselineTree</c>s on the managed heap (issue 12's comparison). Series,
    /// buckets, levels, WAL, snapshot files and API are the same for both.</summary>
    public string Engine { get; set; } = Trees.TreeBackends.Arena;

    /// <summary>Shards per tenant: series are spread over them by hash, each with its own trees, WAL and snapshots.</summary>
    public int ShardCount { get; set; } = 4;

    /// <summary>Time levels: level 0 holds 10 s buckets, each further level buckets ten times longer
    /// (6 levels: 10 s … 10^6 s ≈ 11.6 days).</summary>
    public int Levels { get; set; } = 6;

    /// <summary>Where shards keep their WAL and snapshots: <c>Local</c> (default) = directories under <see cref="DataDir"/>;
    /// <c>AzureBlob</c> = append and block blobs in <see cref="BlobContainer"/>, shared by a cluster, with fencing
    /// (native-notes.md, "Shared medium and fencing"). <see cref="DataDir"/> then only holds scratch copies of snapshots.</summary>
    public string Medium { get; set; } = LocalMedium;

    /// <summary>The Azure Storage connection string for <c>Medium = AzureBlob</c> (Azurite's well-known one in tests).</summary>
    public string? BlobConnectionString { get; set; }

    /// <summary>The blob container for <c>Medium = AzureBlob</c> (created when missing).</summary>
    public string BlobContainer { get; set; } = "profilearena";

    /// <summary><see cref="Medium"/> values.</summary>
    public const string LocalMedium = "Local", AzureBlobMedium = "AzureBlob";

    /// <summary>True when <see cref="Medium"/> is <c>AzureBlob</c>.</summary>
    public bool IsBlobMedium => string.Equals(Medium, AzureBlobMedium, StringComparison.OrdinalIgnoreCase);

    /// <summary>Retention per level in seconds (index = level; 0 or a missing entry = keep forever): a bucket
    /// is removed once its end is older than now minus the level's retention. Default: 10 s buckets for 2
    /// days, 100 s for 7 days, 1000 s for 30 days, coarser ones forever.</summary>
    public long[] LevelRetentionSeconds { get; set; } = [2 * 86400, 7 * 86400, 30 * 86400];

    /// <summary>Memory budget of the stores over all shards, in bytes (0 = none): at or past it, ingest throws
    /// <see cref="StorageFullException"/>; queries keep working. The arena counts its native bytes; Baseline
    /// (trees on the managed heap) counts nodes × an estimated 176 bytes per node.</summary>
    public long MaxNativeBytes { get; set; }

    /// <summary>Most native bytes of the query merge cache (native-notes.md, "Server storage", merge cache): merged trees
    /// of repeated queries' stable pieces, kept between queries and checked against the stored trees' write versions
    /// before each use. Counted against <see cref="MaxNativeBytes"/> and evicted before a write is refused. 0 = off.</summary>
    public long MergeCacheBytes { get; set; } = 256L << 20;

    /// <summary>Seconds between periodic snapshots of each shard that changed (0 = only on shutdown and on WAL size).</summary>
    public int SnapshotIntervalSeconds { get; set; } = 300;

    /// <summary>A shard is snapshotted (retiring its WAL) once its WAL holds this many bytes.</summary>
    public long WalSnapshotBytes { get; set; } = 256L << 20;

    /// <summary>Most bytes of WAL records written by one group commit (one write + one fsync).</summary>
    public int WalGroupBytes { get; set; } = 8 << 20;

    /// <summary>Most bytes (WAL payload bytes) of writes a shard has acknowledged but not yet applied to memory (native-notes.md,
    /// "Server storage", the write loop): a write is acknowledged once durable and applied after; at this backlog
    /// new acknowledgements wait for the apply stage. Bounds the memory the backlog holds (its copies of the stacks)
    /// and how long a query waits to see every acknowledged write (≈ the apply time of this many bytes: at 100 M nodes a
    /// 1,000-stack push is ≈ 440 KB of payload and ≈ 35 ms of apply on a quiet machine, so 4 MiB ≈ 9 pushes ≈ 0.3 s;
    /// 32 MiB let a render wait 48 s behind the backlog on a loaded machine, perf/README.md "Acknowledge first").</summary>
    public long MaxUnappliedBytes { get; set; } = 4L << 20;

    /// <summary>Tests only (not configuration): runs on a shard's apply stage before each durable group is applied,
    /// with the shard's name; it may block (a slow apply) or throw (an apply that fails after the acknowledgement).</summary>
    internal Action<string>? BeforeApplyForTests { get; set; }

    /// <summary>Seconds between retention passes.</summary>
    public int RetentionIntervalSeconds { get; set; } = 60;

    /// <summary>Compaction of a shard's frame names (native-notes.md, "Server storage", compaction): after a retention
    /// pass that removed trees, a shard whose store holds more than this many times the name bytes its live trees
    /// used at the last compaction (or at open) copies its live trees into a fresh store and drops the old one.
    /// 0 = never (the names of removed trees then stay for the shard's life; its snapshots keep them too). Must be 0 or above 1.</summary>
    public double CompactionFactor { get; set; } = 2;

    /// <summary>A compaction also needs at least this many bytes of names beyond the live ones (small shards are not
    /// rebuilt for a few kilobytes).</summary>
    public long CompactionMinBytes { get; set; } = 4L << 20;

    /// <summary>Options bound from <paramref name="section"/> (the <c>Storage</c> section) and validated. A configured
    /// <c>LevelRetentionSeconds</c> replaces the default list (the binder alone would append to it).</summary>
    public static StorageOptions From(IConfiguration section)
    {
        var options = new StorageOptions();
        section.Bind(options);
        IConfigurationSection retention = section.GetSection(nameof(LevelRetentionSeconds));
        if (retention.Exists())
        {
            var levels = new List<long>();
            foreach (IConfigurationSection level in retention.GetChildren())
            {
                if (!int.TryParse(level.Key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int index) || index >= BucketMath.MaxLevels
                    || !long.TryParse(level.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long seconds))
                    throw new ArgumentException($"Storage:LevelRetentionSeconds:{level.Key} = '{level.Value}': the key must be a level (0…{BucketMath.MaxLevels - 1}) and the value whole seconds");
                while (levels.Count <= index) levels.Add(0);
                levels[index] = seconds;
            }
            options.LevelRetentionSeconds = [.. levels];
        }
        options.Validate();
        return options;
    }

    /// <summary>Throws when a setting is out of range.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(DataDir)) throw new ArgumentException("Storage:DataDir must name a directory");
        if (!string.Equals(Engine, Trees.TreeBackends.Arena, StringComparison.OrdinalIgnoreCase) && !string.Equals(Engine, Trees.TreeBackends.Baseline, StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"Storage:Engine (--storage) must be arena or baseline, not '{Engine}'");
        if (!string.Equals(Medium, LocalMedium, StringComparison.OrdinalIgnoreCase) && !IsBlobMedium)
            throw new ArgumentException($"Storage:Medium must be Local or AzureBlob, not '{Medium}'");
        if (IsBlobMedium && string.IsNullOrWhiteSpace(BlobConnectionString))
            throw new ArgumentException("Storage:Medium is AzureBlob, so Storage:BlobConnectionString must be set");
        if (IsBlobMedium)
        {
            try
            {
                _ = new Azure.Storage.Blobs.BlobServiceClient(BlobConnectionString); // parses only, no request
            }
            catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
            {
                throw new ArgumentException($"Storage:BlobConnectionString is not an Azure Storage connection string: {e.Message}", e);
            }
        }
        if (IsBlobMedium && (BlobContainer.Length is < 3 or > 63 || !BlobContainer.All(c => c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-')
            || BlobContainer[0] == '-' || BlobContainer[^1] == '-' || BlobContainer.Contains("--", StringComparison.Ordinal)))
            throw new ArgumentException($"Storage:BlobContainer must be 3…63 characters of a-z, 0-9 and single inner '-', not '{BlobContainer}'");
        if (ShardCount is < 1 or > 1024) throw new ArgumentException($"Storage:ShardCount must be 1…1024, not {ShardCount}");
        if (Levels is < 1 or > BucketMath.MaxLevels) throw new ArgumentException($"Storage:Levels must be 1…{BucketMath.MaxLevels}, not {Levels}");
        if (LevelRetentionSeconds.Any(r => r < 0)) throw new ArgumentException("Storage:LevelRetentionSeconds must not be negative");
        for (int level = 1; level < Levels; level++)
        {
            // Coarser levels keep at least as long (0 = forever): a query falls back from an expired fine
            // bucket to a kept coarse one, which needs retention to grow with the level.
            long fine = RetentionOf(level - 1), coarse = RetentionOf(level);
            if (coarse != 0 && (fine == 0 || coarse < fine))
                throw new ArgumentException($"Storage:LevelRetentionSeconds must not shrink from level {level - 1} ({fine} s) to level {level} ({coarse} s); 0 means forever");
        }
        if (MaxNativeBytes < 0) throw new ArgumentException("Storage:MaxNativeBytes must not be negative");
        if (MergeCacheBytes < 0) throw new ArgumentException("Storage:MergeCacheBytes must not be negative (0 turns the merge cache off)");
        if (SnapshotIntervalSeconds < 0 || RetentionIntervalSeconds < 1) throw new ArgumentException("Storage:SnapshotIntervalSeconds ≥ 0 and Storage:RetentionIntervalSeconds ≥ 1");
        if (!(CompactionFactor == 0 || CompactionFactor > 1) || double.IsInfinity(CompactionFactor) || CompactionMinBytes < 0)
            throw new ArgumentException($"Storage:CompactionFactor must be 0 (off) or above 1, not {CompactionFactor}, and Storage:CompactionMinBytes not negative");
        if (WalSnapshotBytes < 1 << 16 || WalGroupBytes < 1 << 16 || MaxUnappliedBytes < 1 << 16)
            throw new ArgumentException("Storage:WalSnapshotBytes, Storage:WalGroupBytes and Storage:MaxUnappliedBytes must be at least 64 KiB");
    }

    /// <summary>Retention of <paramref name="level"/> in seconds, 0 = forever.</summary>
    public long RetentionOf(int level) => level < LevelRetentionSeconds.Length ? LevelRetentionSeconds[level] : 0;
}
