using System.Collections.Concurrent;
using ProfileArena.Server.Storage;
using ProfileArena.Server.Storage.Media;
using ProfileArena.Server.Storage.Shards;

namespace ProfileArena.Server.Cluster;

/// <summary>
/// The shards active on this silo: their native budget (<c>Storage:MaxNativeBytes</c> is per silo in a cluster)
/// and the counts /metrics shows (this silo's shards only; a cluster-wide view is a sum over silos).
/// </summary>
internal sealed class LocalShards
{
    private readonly ConcurrentDictionary<string, Shard> _shards = new(StringComparer.Ordinal);

    public LocalShards(StorageOptions options)
    {
        Budget = new NativeBudget(options.MaxNativeBytes, () => _shards.Values.Sum(s => s.BudgetBytes));
        Media = ShardMedia.Create(options);
    }

    /// <summary>Where this silo's shards live (Storage:Medium): shared blob storage in a real cluster, so that a
    /// shard can be taken over by another silo; local directories when every silo shares one machine.</summary>
    public ShardMedia Media { get; }

    /// <summary>Shared by every shard of this silo, as the single node shares one budget among its shards.</summary>
    public NativeBudget Budget { get; }

    public long NativeBytes => _shards.Values.Sum(s => s.NativeBytes);

    /// <summary>Grain keys of the shards active here (tests look where a shard lives).</summary>
    public IReadOnlyCollection<string> Keys => [.. _shards.Keys];

    /// <summary>This silo's figures for placement and rebalancing (<see cref="ShardLoadTable"/>): the bytes its shards
    /// count against the budget, their number, and the budget's admission line (0: no budget).</summary>
    public SiloShardLoad Load()
    {
        long bytes = 0;
        int count = 0;
        foreach (Shard s in _shards.Values)
        {
            bytes += s.BudgetBytes;
            count++;
        }
        return new SiloShardLoad(bytes, count, Budget.Limit > 0 ? Budget.AdmissionLimit : 0);
    }

    /// <summary>The active shards' budget bytes by grain key (the rebalancer picks one to move).</summary>
    public List<(string Key, long Bytes)> Sizes() => [.. _shards.Select(kv => (kv.Key, kv.Value.BudgetBytes))];

    public void Add(string key, Shard shard) => _shards[key] = shard;

    public void Remove(string key) => _shards.TryRemove(key, out _);

    public StorageStats Stats() => ShardStats.Sum(_shards.Values);
}
