using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Microsoft.Extensions.Logging.Abstractions;
using ProfileArena.Server.Storage;
using ProfileArena.Server.Storage.Media;
using ProfileArena.Server.Storage.Shards;
using ProfileArena.Tests.Server.Storage;

namespace ProfileArena.Tests.Server.Media;

/// <summary>
/// One shard medium under test, Local (a temp data directory) or Blob (a fresh container of the shared Azurite
/// plus a temp scratch directory), with raw access to the WAL segments as a crash or a bit flip would leave them.
/// </summary>
public sealed class MediumKit : IAsyncDisposable
{
    private readonly TempDataDir _dir = new();

    private MediumKit(string kind, BlobContainerClient? container, string? connection)
    {
        Kind = kind;
        Container = container;
        Connection = connection;
    }

    public string Kind { get; }

    public BlobContainerClient? Container { get; }

    public string? Connection { get; }

    public bool IsBlob => Container != null;

    public string DataDir => _dir.Path;

    public static async Task<MediumKit> CreateAsync(string kind, AzuriteFixture azurite)
    {
        if (kind == "Local") return new MediumKit(kind, null, null);
        BlobContainerClient container = await azurite.NewContainerAsync();
        return new MediumKit(kind, container, await azurite.ConnectionStringAsync());
    }

    public StorageOptions Options(int shards = 1)
    {
        StorageOptions options = StorageTestKit.Options(_dir.Path, shards);
        if (IsBlob)
        {
            options.Medium = StorageOptions.AzureBlobMedium;
            options.BlobConnectionString = Connection;
            options.BlobContainer = Container!.Name;
        }
        return options;
    }

    /// <summary>A shard opened directly (what a grain does): tenant recorded, medium opened, ownership taken.</summary>
    internal Shard OpenShard(string tenant, int number = 0)
    {
        StorageOptions options = Options();
        ShardMedia media = ShardMedia.Create(options);
        media.EnsureTenant(tenant);
        return Shard.Open(tenant, number, media.Open(tenant, number), options, () => 1_700_000_000, new NativeBudget(0, () => 0), NullLogger.Instance);
    }

    /// <summary>The WAL segments holding bytes (name, bytes as a reader sees them: up to a blob's cut), by name.</summary>
    public List<(string Name, byte[] Bytes)> Segments()
    {
        if (!IsBlob)
        {
            return [.. Directory.EnumerateFiles(_dir.Path, "wal-*.log", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(p => (p, File.ReadAllBytes(p))).Where(s => s.Item2.Length > 0)];
        }
        var list = new List<(string, byte[])>();
        foreach (BlobItem item in Container!.GetBlobs(new GetBlobsOptions { Traits = BlobTraits.Metadata }).Where(b => b.Name.Contains("/wal-", StringComparison.Ordinal)).OrderBy(b => b.Name, StringComparer.Ordinal))
        {
            byte[] bytes = Container.GetBlobClient(item.Name).DownloadContent().Value.Content.ToArray();
            if (item.Metadata.TryGetValue("validlength", out string? cut)) bytes = bytes[..int.Parse(cut, System.Globalization.CultureInfo.InvariantCulture)];
            if (bytes.Length > 0) list.Add((item.Name, bytes));
        }
        return list;
    }

    /// <summary>Replaces a segment's content (a torn write or a flipped bit): a file is rewritten; a blob is deleted
    /// and created again with <paramref name="bytes"/> appended in blocks of at most 4 MiB.</summary>
    public void Rewrite(string name, byte[] bytes)
    {
        if (!IsBlob)
        {
            File.WriteAllBytes(name, bytes);
            return;
        }
        AppendBlobClient blob = Container!.GetAppendBlobClient(name);
        try { blob.GetBlobLeaseClient().Break(TimeSpan.Zero); } catch (Azure.RequestFailedException) { }
        blob.Delete();
        blob.Create();
        for (int at = 0; at < bytes.Length; at += BlobShardMedium.AppendBlockBytes)
        {
            int length = Math.Min(BlobShardMedium.AppendBlockBytes, bytes.Length - at);
            blob.AppendBlock(new MemoryStream(bytes, at, length));
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Container != null) await Container.DeleteIfExistsAsync();
        _dir.Dispose();
    }
}
