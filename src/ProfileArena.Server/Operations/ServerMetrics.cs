using Prometheus;
using ProfileArena.Server.Storage;

namespace ProfileArena.Server.Operations;

/// <summary>
/// The server's Prometheus metrics (prometheus-net), in a registry of its own per app instance so that
/// several servers in one test process do not share counters. Storage counts and GC figures are read
/// at each scrape.
/// </summary>
public sealed class ServerMetrics
{
    public ServerMetrics(IProfileStorage storage)
    {
        Registry = Metrics.NewCustomRegistry();
        DotNetStats.Register(Registry); // dotnet_collection_count_total{generation}, memory, threads, …
        var factory = Metrics.WithCustomRegistry(Registry);
        IngestRequests = factory.CreateCounter("profilearena_ingest_requests_total", "Ingest requests by body format and outcome (stored, rejected).", "format", "outcome");
        IngestBytes = factory.CreateCounter("profilearena_ingest_bytes_total", "Ingest request body bytes received (before decompression).");
        IngestStacks = factory.CreateCounter("profilearena_ingest_stacks_total", "Distinct stacks stored by acknowledged ingests.");
        IngestProfiles = factory.CreateCounter("profilearena_ingest_profiles_total", "Series profiles stored by acknowledged ingests (one per series per request).");
        IngestDuration = factory.CreateHistogram("profilearena_ingest_duration_seconds", "Ingest request latency, decode and durable write included.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 16) });
        IngestPhase = factory.CreateHistogram("profilearena_ingest_phase_seconds", "Where an ingest's time goes: read (the body), decode (gzip, pprof/folded), store (queue, WAL group fsync and apply to memory).",
            new HistogramConfiguration { LabelNames = ["phase"], Buckets = Histogram.ExponentialBuckets(0.0005, 2, 16) });
        QueryRequests = factory.CreateCounter("profilearena_query_requests_total", "Query requests by endpoint and HTTP status.", "endpoint", "status");
        QueryDuration = factory.CreateHistogram("profilearena_query_duration_seconds", "Query latency by endpoint.",
            new HistogramConfiguration { LabelNames = ["endpoint"], Buckets = Histogram.ExponentialBuckets(0.0005, 2, 16) });
        QueryPhase = factory.CreateHistogram("profilearena_query_phase_seconds", "Where a /render's time goes: merge (stored trees into the query's tree), truncate (to maxNodes), export (flamebearer JSON into a buffer), send.",
            new HistogramConfiguration { LabelNames = ["phase"], Buckets = Histogram.ExponentialBuckets(0.0005, 2, 16) });
        QueryStoragePhase = factory.CreateHistogram("profilearena_query_storage_phase_seconds", "Where a /render's merge phase goes in storage (single node): wait (for acknowledged writes to be applied: read-your-writes), collect (index lookups), direct (stored trees merged straight in), extend / rebuild / newest / new (merge cache entries brought up to date: extended with new trees, rebuilt after a change, the newest 10 s group rebuilt, built for the first time), gate (waiting for a cache entry another query holds), copy (cache entries merged in), uncached (merge without the cache). Observed every render, zeros included.",
            new HistogramConfiguration { LabelNames = ["phase"], Buckets = Histogram.ExponentialBuckets(0.0001, 2, 18) });
        QueryCacheTrees = factory.CreateCounter("profilearena_query_cache_trees_merged_total", "Stored trees merged into merge cache entries by /render queries: extending an entry, rebuilding one.", "kind");
        QueryCacheNodes = factory.CreateCounter("profilearena_query_cache_nodes_total", "Nodes of merge cache entries after an extension or rebuild (what those merges built), and of the entries merged into queries' trees (copy).", "kind");
        QueryTreesMerged = factory.CreateCounter("profilearena_query_trees_merged_total", "Stored trees merged by /render queries (one per series and bucket piece).");
        var series = factory.CreateGauge("profilearena_storage_series", "Series stored.");
        var trees = factory.CreateGauge("profilearena_storage_trees", "Trees stored (buckets and levels).");
        var nodes = factory.CreateGauge("profilearena_storage_nodes", "Call-tree nodes stored.");
        var native = factory.CreateGauge("profilearena_storage_native_bytes", "Native memory held by the shards' stores (the query merge cache: profilearena_merge_cache_bytes).");
        var apply = factory.CreateGauge("profilearena_storage_apply_seconds_total", "Seconds the shards spent applying acknowledged writes to memory (merges into every level).");
        var syncs = factory.CreateGauge("profilearena_storage_wal_syncs_total", "WAL group fsyncs since start.");
        var records = factory.CreateGauge("profilearena_storage_wal_records_total", "WAL records since start.");
        var budgetBytes = factory.CreateGauge("profilearena_storage_budget_bytes", "Bytes counted against Storage:MaxNativeBytes: native bytes (arena), estimated managed bytes of the trees (Baseline).");
        var wal = factory.CreateGauge("profilearena_storage_wal_bytes", "Bytes in the write-ahead log.");
        var shards = factory.CreateGauge("profilearena_storage_shards", "Storage shards.");
        var compactions = factory.CreateCounter("profilearena_storage_compactions_total", "Shard compactions: live trees copied into a fresh store to drop the frame names of removed trees.");
        var compactionBytes = factory.CreateCounter("profilearena_storage_compaction_reclaimed_bytes_total", "Native bytes given back by shard compactions (old store's bytes minus the new store's).");
        var compactionsSkipped = factory.CreateCounter("profilearena_storage_compactions_skipped_total", "Shard compactions skipped because the copy would not fit Storage:MaxNativeBytes.");
        var cacheBytes = factory.CreateGauge("profilearena_merge_cache_bytes", "Native bytes of the query merge cache (Storage:MergeCacheBytes), counted against Storage:MaxNativeBytes.");
        var cacheEntries = factory.CreateGauge("profilearena_merge_cache_entries", "Entries of the query merge cache.");
        var cacheHits = factory.CreateCounter("profilearena_merge_cache_hits_total", "Query piece groups served from an unchanged merge cache entry.");
        var cacheExtended = factory.CreateCounter("profilearena_merge_cache_extended_total", "Query piece groups served from a merge cache entry after merging the trees it lacked into it.");
        var cacheRebuilt = factory.CreateCounter("profilearena_merge_cache_rebuilt_total", "Query piece groups whose merge cache entry was new or no longer matched the stored trees, merged again from them.");
        var cacheEvicted = factory.CreateCounter("profilearena_merge_cache_evicted_total", "Merge cache entries evicted (least recently used, or room given back to a write).");
        var ready = factory.CreateGauge("profilearena_storage_ready", "1 once the write-ahead log is replayed.");
        var pools = factory.CreateGauge("profilearena_pool_retained_bytes", "Managed bytes kept by the request path's array pools (ingest buffers, pprof decoder tables); bounded, outside Storage:MaxNativeBytes.");
        var gcPause = factory.CreateGauge("profilearena_gc_pause_seconds_total", "Total time the GC has paused the process (GC.GetTotalPauseDuration).");
        var gcCollections = factory.CreateGauge("profilearena_gc_collections", "GC collections since start, by generation.", "generation");
        // How the runtime's GC is set up (the project asks for Server GC with one heap; DOTNET_GC* settings override it).
        var gcHeaps = factory.CreateGauge("profilearena_gc_heaps", "GC heaps (and GC threads) of this process: 1 unless DOTNET_GCHeapCount says otherwise (README, \"The server under load\").");
        var gcServer = factory.CreateGauge("profilearena_gc_server", "1 when the process runs Server GC.");
        IReadOnlyDictionary<string, object> gcConfig = GC.GetConfigurationVariables();
        gcHeaps.Set(gcConfig.TryGetValue("HeapCount", out object? heapCount) ? Convert.ToDouble(heapCount, System.Globalization.CultureInfo.InvariantCulture) : 1);
        gcServer.Set(System.Runtime.GCSettings.IsServerGC ? 1 : 0);
        var minWorkers = factory.CreateGauge("profilearena_threadpool_min_workers", "Thread-pool worker threads created without delay (Server:MinWorkerThreads, or the runtime's one per core).");
        ThreadPool.GetMinThreads(out int minWorkerThreads, out _);
        minWorkers.Set(minWorkerThreads);
        Registry.AddBeforeCollectCallback(() =>
        {
            ready.Set(storage.IsReady ? 1 : 0);
            gcPause.Set(GC.GetTotalPauseDuration().TotalSeconds);
            pools.Set(ProfileArena.Formats.RetainingArrayPools.RetainedBytes);
            for (int g = 0; g <= GC.MaxGeneration; g++) gcCollections.WithLabels(g.ToString(System.Globalization.CultureInfo.InvariantCulture)).Set(GC.CollectionCount(g));
            if (!storage.IsReady) return;
            StorageStats s = storage.Stats();
            series.Set(s.Series);
            trees.Set(s.Trees);
            nodes.Set(s.Nodes);
            native.Set(s.NativeBytes);
            wal.Set(s.WalBytes);
            budgetBytes.Set(s.BudgetBytes);
            apply.Set(s.ApplySeconds);
            syncs.Set(s.WalSyncs);
            records.Set(s.WalRecords);
            shards.Set(s.Shards);
            compactions.IncTo(s.Compactions);
            compactionBytes.IncTo(s.CompactionReclaimedBytes);
            compactionsSkipped.IncTo(s.CompactionsSkipped);
            cacheBytes.Set(s.MergeCache.Bytes);
            cacheEntries.Set(s.MergeCache.Entries);
            cacheHits.IncTo(s.MergeCache.Hits);
            cacheExtended.IncTo(s.MergeCache.Extended);
            cacheRebuilt.IncTo(s.MergeCache.Rebuilt);
            cacheEvicted.IncTo(s.MergeCache.Evicted);
        });
    }

    public CollectorRegistry Registry { get; }
    public Counter IngestRequests { get; }
    public Counter IngestBytes { get; }
    public Counter IngestStacks { get; }
    public Counter IngestProfiles { get; }
    public Histogram IngestDuration { get; }
    /// <summary>Ingest's phases (read, decode, store), so a load run can say where a push's time goes.</summary>
    public Histogram IngestPhase { get; }
    public Counter QueryRequests { get; }
    public Histogram QueryDuration { get; }
    /// <summary>/render's phases (merge, truncate, export, send), so a load run can say where a render's time goes.</summary>
    public Histogram QueryPhase { get; }
    public Counter QueryTreesMerged { get; }
    /// <summary>The storage's part of /render's merge phase (<see cref="QueryTiming"/>), by sub-phase.</summary>
    public Histogram QueryStoragePhase { get; }
    /// <summary>Stored trees merged into merge cache entries by /render, by kind (extend, rebuild).</summary>
    public Counter QueryCacheTrees { get; }
    /// <summary>Nodes of merge cache entries built (extend, rebuild) and merged into /render's trees (copy).</summary>
    public Counter QueryCacheNodes { get; }
}
