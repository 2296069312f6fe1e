namespace ProfileArena.Server.Storage.Shards;

/// <summary>The storage-wide counts of a set of shards: the single node's (every shard) and a silo's (its active
/// shard grains) are the same sum.</summary>
internal static class ShardStats
{
    public static StorageStats Sum(IEnumerable<Shard> shards)
    {
        long series = 0, trees = 0, nodes = 0, bytes = 0, wal = 0, count = 0, budget = 0, records = 0, syncs = 0, merged = 0, compactions = 0, reclaimed = 0, skipped = 0;
        double apply = 0;
        foreach (Shard s in shards)
        {
            var st = s.Stats();
            series += st.Series;
            trees += st.Trees;
            nodes += st.Nodes;
            bytes += st.NativeBytes;
            wal += st.WalBytes;
            budget += s.BudgetBytes;
            apply += s.ApplyTime.TotalSeconds;
            var (r, y) = s.WalWrites;
            records += r;
            syncs += y;
            merged += s.TreesMergedByQueries;
            var (compacted, freed, skips) = s.Compactions;
            compactions += compacted;
            reclaimed += freed;
            skipped += skips;
            count++;
        }
        return new StorageStats(series, trees, nodes, bytes, wal, count)
        {
            WalRecords = records, WalSyncs = syncs, QueryTreesMerged = merged, BudgetBytes = budget, ApplySeconds = apply,
            Compactions = compactions, CompactionReclaimedBytes = reclaimed, CompactionsSkipped = skipped,
        };
    }
}
