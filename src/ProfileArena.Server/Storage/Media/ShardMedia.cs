using System.Text;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using ProfileArena.Server.Storage.Shards;

namespace ProfileArena.Server.Storage.Media;

/// <summary>
/// The medium every shard of a storage lives on, chosen by <see cref="StorageOptions.Medium"/>: finds the shards
/// that exist, records a tenant's name once, and opens one shard's <see cref="IShardMedium"/> for
/// <see cref="Shard.Open(string, int, IShardMedium, StorageOptions, Func{long}, NativeBudget, Microsoft.Extensions.Logging.ILogger)"/>.
/// Layout on both: <c>&lt;tenant dir&gt;/tenant.name</c> and <c>&lt;tenant dir&gt;/shard-N/…</c>
/// (<see cref="TenantDirectory"/>), under <c>DataDir</c> or in the blob container.
/// </summary>
internal abstract class ShardMedia
{
    /// <summary>The configured medium: local directories under <c>DataDir</c>, or the Azure Blob container.</summary>
    public static ShardMedia Create(StorageOptions options) =>
        options.IsBlobMedium ? new Blob(options) : new Local(Path.GetFullPath(options.DataDir));

    /// <summary>Every (tenant, shard number) that has been written.</summary>
    /// <exception cref="InvalidDataException">A tenant name does not match its directory.</exception>
    public abstract List<(string Tenant, int Number)> ExistingShards();

    /// <summary>The shard numbers of <paramref name="tenant"/> that have been written (a shard grain opens only those
    /// on a read, and a cluster query asks every one of them).</summary>
    public abstract List<int> ExistingShardNumbers(string tenant);

    /// <summary>Records <paramref name="tenant"/>'s name under its directory, once.</summary>
    /// <exception cref="StorageUnavailableException">The directory belongs to another tenant (hash collision).</exception>
    public abstract void EnsureTenant(string tenant);

    /// <summary>The medium of shard <paramref name="number"/> of <paramref name="tenant"/> (not yet owned: <see cref="Shard.Open(string, int, IShardMedium, StorageOptions, Func{long}, NativeBudget, Microsoft.Extensions.Logging.ILogger)"/> takes ownership).</summary>
    public abstract IShardMedium Open(string tenant, int number);

    private static string CheckName(string where, string tenant, string directory)
    {
        if (TenantDirectory.For(tenant) != directory)
            throw new InvalidDataException($"{where} names tenant '{tenant}', whose directory would be {TenantDirectory.For(tenant)}, not {directory}");
        return tenant;
    }

    private static bool TryShardNumber(string name, out int number) =>
        int.TryParse(name.AsSpan(6), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out number) && name.StartsWith("shard-", StringComparison.Ordinal);

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    /// <summary><c>DataDir/&lt;tenant dir&gt;/shard-N/</c> on this machine.</summary>
    private sealed class Local(string root) : ShardMedia
    {
        public override List<(string Tenant, int Number)> ExistingShards()
        {
            Directory.CreateDirectory(root);
            var list = new List<(string, int)>();
            foreach (string dir in Directory.EnumerateDirectories(root))
            {
                string nameFile = Path.Combine(dir, TenantDirectory.NameFile);
                if (!File.Exists(nameFile)) continue;
                string tenant = CheckName(nameFile, StrictUtf8.GetString(File.ReadAllBytes(nameFile)), Path.GetFileName(dir));
                foreach (int n in ExistingShardNumbers(tenant)) list.Add((tenant, n));
            }
            return list;
        }

        public override List<int> ExistingShardNumbers(string tenant)
        {
            string tenantDir = Path.Combine(root, TenantDirectory.For(tenant));
            var list = new List<int>();
            if (!Directory.Exists(tenantDir)) return list;
            foreach (string shardDir in Directory.EnumerateDirectories(tenantDir, "shard-*"))
            {
                if (TryShardNumber(Path.GetFileName(shardDir), out int n)) list.Add(n);
            }
            return list;
        }

        public override void EnsureTenant(string tenant)
        {
            string tenantDir = Path.Combine(root, TenantDirectory.For(tenant));
            string nameFile = Path.Combine(tenantDir, TenantDirectory.NameFile);
            if (!File.Exists(nameFile))
            {
                Directory.CreateDirectory(tenantDir);
                AtomicFile.Write(nameFile, Encoding.UTF8.GetBytes(tenant));
                DirectorySync.Flush(Path.GetDirectoryName(tenantDir)!);
            }
            else if (StrictUtf8.GetString(File.ReadAllBytes(nameFile)) != tenant)
            {
                throw new StorageUnavailableException($"{tenantDir} belongs to another tenant (hash collision of long tenant names)");
            }
        }

        public override IShardMedium Open(string tenant, int number) =>
            new LocalShardMedium(Path.Combine(root, TenantDirectory.For(tenant), $"shard-{number}"));
    }

    /// <summary>The container <c>Storage:BlobContainer</c>: blobs <c>&lt;tenant dir&gt;/tenant.name</c>, <c>&lt;tenant dir&gt;/shard-N/…</c>.</summary>
    private sealed class Blob : ShardMedia
    {
        private readonly BlobContainerClient _container;
        private readonly string _scratch;

        public Blob(StorageOptions options)
        {
            var clientOptions = new BlobClientOptions();
            clientOptions.Retry.MaxRetries = 3;
            clientOptions.Retry.NetworkTimeout = TimeSpan.FromSeconds(30);
            _container = new BlobContainerClient(options.BlobConnectionString, options.BlobContainer, clientOptions);
            _scratch = Path.Combine(Path.GetFullPath(options.DataDir), "blob-scratch");
        }

        private volatile bool _containerReady;

        /// <summary>Creates the container on first use (not in the constructor: an unreachable service must fail
        /// the storage's open, which the host reports and exits on, not its construction).</summary>
        private void EnsureContainer()
        {
            if (_containerReady) return;
            try
            {
                _container.CreateIfNotExists();
            }
            catch (RequestFailedException e)
            {
                throw new StorageUnavailableException($"Storage:BlobContainer '{_container.Name}' cannot be created or reached: {e.Status} {e.ErrorCode}", e);
            }
            catch (AggregateException e)
            {
                throw new StorageUnavailableException($"Storage:BlobContainer '{_container.Name}' cannot be reached: {e.InnerExceptions[0].Message}", e);
            }
            _containerReady = true;
        }

        public override List<(string Tenant, int Number)> ExistingShards()
        {
            EnsureContainer();
            var list = new List<(string, int)>();
            try
            {
                foreach (BlobHierarchyItem tenantItem in _container.GetBlobsByHierarchy(new GetBlobsByHierarchyOptions { Delimiter = "/" }))
                {
                    if (!tenantItem.IsPrefix) continue;
                    string dir = tenantItem.Prefix.TrimEnd('/');
                    BlobClient nameBlob = _container.GetBlobClient($"{dir}/{TenantDirectory.NameFile}");
                    if (!nameBlob.Exists()) continue;
                    string tenant = CheckName($"blob {nameBlob.Name}", StrictUtf8.GetString(nameBlob.DownloadContent().Value.Content.ToArray()), dir);
                    foreach (int n in ExistingShardNumbers(tenant)) list.Add((tenant, n)); // CheckName: the tenant's prefix is this one
                }
            }
            catch (RequestFailedException e)
            {
                throw new StorageUnavailableException($"cannot list the shards in blob container {_container.Name}: {e.Status} {e.ErrorCode}", e);
            }
            return list;
        }

        public override List<int> ExistingShardNumbers(string tenant)
        {
            EnsureContainer();
            string prefix = TenantDirectory.For(tenant) + "/";
            var list = new List<int>();
            try
            {
                foreach (BlobHierarchyItem item in _container.GetBlobsByHierarchy(new GetBlobsByHierarchyOptions { Delimiter = "/", Prefix = prefix }))
                {
                    if (item.IsPrefix && TryShardNumber(item.Prefix[prefix.Length..].TrimEnd('/'), out int n)) list.Add(n);
                }
            }
            catch (RequestFailedException e)
            {
                throw new StorageUnavailableException($"cannot list the shards of tenant '{tenant}' in blob container {_container.Name}: {e.Status} {e.ErrorCode}", e);
            }
            return list;
        }

        public override void EnsureTenant(string tenant)
        {
            EnsureContainer();
            BlobClient nameBlob = _container.GetBlobClient($"{TenantDirectory.For(tenant)}/{TenantDirectory.NameFile}");
            try
            {
                try
                {
                    nameBlob.Upload(new BinaryData(Encoding.UTF8.GetBytes(tenant)), new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } });
                    return;
                }
                catch (RequestFailedException e) when (e.Status is 409 or 412)
                {
                    // written before
                }
                if (StrictUtf8.GetString(nameBlob.DownloadContent().Value.Content.ToArray()) != tenant)
                    throw new StorageUnavailableException($"blob {nameBlob.Name} belongs to another tenant (hash collision of long tenant names)");
            }
            catch (RequestFailedException e)
            {
                throw new StorageUnavailableException($"cannot record tenant '{tenant}' in blob container {_container.Name}: {e.Status} {e.ErrorCode}", e);
            }
        }

        public override IShardMedium Open(string tenant, int number)
        {
            EnsureContainer();
            return new BlobShardMedium(_container, $"{TenantDirectory.For(tenant)}/shard-{number}/", _scratch);
        }
    }
}
