using System.Diagnostics;

namespace ProfileArena.Server.Storage;

/// <summary>
/// Where one query's storage time went (single node; a cluster's fan-out leaves it unset): waiting for acknowledged
/// writes to be applied (read-your-writes), finding the trees, and merging — stored trees merged straight into the
/// query's tree, merge cache entries served unchanged, extended with new trees or rebuilt (with the stored trees and
/// nodes each merged), and the uncached path. /render records it as <c>profilearena_query_storage_phase_seconds</c> and
/// answers it in a <c>Server-Timing</c> header, so a load run can say which phase makes a slow render slow.
/// </summary>
public sealed class QueryTiming
{
    /// <summary>Waiting until every acknowledged write the query must see is applied (all shards).</summary>
    public double WaitMs { get; internal set; }

    /// <summary>Index lookups: the trees of matching series at the query's pieces, and the timeline's totals.</summary>
    public double CollectMs { get; internal set; }

    /// <summary>Stored trees merged straight into the query's tree (the cached path's level-0 pieces left of the coarse run).</summary>
    public double DirectMs { get; internal set; }

    /// <summary>Bringing merge cache entries up to date: merging the stored trees an entry lacks into it.</summary>
    public double ExtendMs { get; internal set; }

    /// <summary>Rebuilding merge cache entries that no longer matched the stored trees (a tree changed or left the group),
    /// but for the newest 10 s group (<see cref="NewestMs"/>).</summary>
    public double RebuildMs { get; internal set; }

    /// <summary>Rebuilding the newest 10 s group's entry (a write into it, or time moved on).</summary>
    public double NewestMs { get; internal set; }

    /// <summary>Building entries that did not exist (first query of its key, or evicted).</summary>
    public double NewMs { get; internal set; }

    /// <summary>Waiting for cache entries' gates (another query checking, extending, building or merging from the same entry).</summary>
    public double GateMs { get; internal set; }

    /// <summary>Merging the (current) cache entries into the query's tree.</summary>
    public double CopyMs { get; internal set; }

    /// <summary>With maxNodes: the truncated sum of the cached entries and the direct pieces into the query's tree
    /// (<see cref="ProfileArena.ProfileTree.MergeTruncated"/>), which replaces the copy and the endpoint's truncation.</summary>
    public double SumMs { get; internal set; }

    /// <summary>The uncached path's merge (cache off, or three collect attempts raced retention or compaction).</summary>
    public double UncachedMs { get; internal set; }

    /// <summary>Cache groups served unchanged, extended, rebuilt.</summary>
    public int Hits { get; internal set; }

    public int Extended { get; internal set; }

    public int Rebuilt { get; internal set; }

    /// <summary>Stored trees merged into cache entries by extensions and by rebuilds.</summary>
    public int ExtendTrees { get; internal set; }

    public int RebuildTrees { get; internal set; }

    /// <summary>Nodes of the cache entries merged into the query's tree (what <see cref="CopyMs"/> walked), or of the
    /// entries and the staging tree summed by <see cref="SumMs"/> (whose totals pass reads each of them once).</summary>
    public long CopyNodes { get; internal set; }

    /// <summary>Nodes of the entries after an extension or rebuild (what those merges built).</summary>
    public long ExtendNodes { get; internal set; }

    public long RebuildNodes { get; internal set; }

    /// <summary>Milliseconds since <paramref name="started"/> (a <see cref="Stopwatch"/> timestamp); <paramref name="started"/> becomes now.</summary>
    internal static double Lap(ref long started)
    {
        long now = Stopwatch.GetTimestamp();
        double ms = Stopwatch.GetElapsedTime(started, now).TotalMilliseconds;
        started = now;
        return ms;
    }

    /// <summary>The phases as (name, ms), in the order they run: the names of the metric's <c>phase</c> label and of
    /// the <c>Server-Timing</c> entries.</summary>
    public IEnumerable<(string Phase, double Ms)> Phases()
    {
        yield return ("wait", WaitMs);
        yield return ("collect", CollectMs);
        yield return ("direct", DirectMs);
        yield return ("extend", ExtendMs);
        yield return ("rebuild", RebuildMs);
        yield return ("newest", NewestMs);
        yield return ("new", NewMs);
        yield return ("gate", GateMs);
        yield return ("copy", CopyMs);
        yield return ("sum", SumMs);
        yield return ("uncached", UncachedMs);
    }
}
