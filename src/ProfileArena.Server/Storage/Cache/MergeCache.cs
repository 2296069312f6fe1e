using ProfileArena.Server.Storage.Shards;
using ProfileArena.Server.Storage.Trees;

namespace ProfileArena.Server.Storage.Cache;

/// <summary>One stored tree a query merges: the index of its piece in the query's decomposition, where it lives, and
/// its stamp read when the query collected it (<see cref="Shard.Collect"/>).</summary>
internal readonly record struct MergeComponent(int Piece, Shard Shard, ITreeBackend Backend, int Tree, TreeStamp Stamp);

/// <summary>
/// Merged trees kept between queries (native-notes.md, "Server storage", merge cache): for one tenant and selector, the
/// pieces of a query's decomposition are grouped by level and side (left of the coarsest run, the run, right of it;
/// left and run groups further into aligned runs at fixed places in time, <see cref="AlignedRuns"/>), and
/// each group's trees — over every matching series of every shard — are merged once into a cached tree of its own
/// <see cref="TreeStore"/>. A later query with the same key merges that one tree instead of the group's stored trees,
/// after merging into it (in place) the trees the group gained since: a 1 h render repeated while time moves on adds
/// the newest 10 s trees to the level-0 entry and keeps the coarse entries as they are.
/// </summary>
/// <remarks>
/// <para>Exactness: an entry records the (shard, backend, tree, stamp) of every tree merged into it; it serves a query
/// only when every one of them is among the query's trees with the same backend and the same stamp, i.e. unchanged
/// since (a stamp is read before its tree is read, so an entry's contents are never older than its stamps). Anything
/// else — a late write into an old bucket, a tree removed by retention, a compaction that swapped the shard's backend,
/// a group that lost a piece as the range moved — rebuilds the entry from the query's trees. So an entry is always the
/// exact sum of the trees the query would merge itself, and the result is the same tree the uncached path gives.</para>
/// <para>Memory: each entry owns its store (evicting it frees its names too); the cache keeps the sum of the entries'
/// native bytes under <see cref="StorageOptions.MergeCacheBytes"/> and, with a budget, under what the budget leaves
/// beside the shards, evicting the least recently used entries; a write refused by the budget first evicts every entry
/// not in use (<see cref="Reclaim"/>). Threads: an entry's gate is held while it is checked, extended and merged from,
/// and while it is evicted; a query holds one gate at a time (no lock order between entries).</para>
/// </remarks>
internal sealed class MergeCache(long limitBytes) : IDisposable
{
    /// <summary>Most entries kept, whatever their bytes (each costs a store's fixed part and some managed objects).</summary>
    public const int MaxEntries = 1024;

    private readonly Lock _lock = new();
    private readonly Dictionary<EntryKey, Entry> _entries = [];
    private long _clock;
    private long _hits, _extended, _rebuilt, _evicted;
    private bool _disposed;

    /// <summary>Most bytes the entries may hold (<see cref="StorageOptions.MergeCacheBytes"/>; 0 = the cache is off).</summary>
    public long LimitBytes => limitBytes;

    /// <summary>Native bytes of the entries' stores as last measured (after each use).</summary>
    public long Bytes
    {
        get
        {
            lock (_lock) return _entries.Values.Sum(e => e.Bytes);
        }
    }

    /// <summary>Entries, and what queries did with them so far: served unchanged, extended with new trees, rebuilt
    /// (invalid or new), evicted.</summary>
    public (int Entries, long Hits, long Extended, long Rebuilt, long Evicted) Counters
    {
        get
        {
            lock (_lock) return (_entries.Count, Interlocked.Read(ref _hits), Interlocked.Read(ref _extended), Interlocked.Read(ref _rebuilt), Interlocked.Read(ref _evicted));
        }
    }

    /// <summary>
    /// Merges the trees of <paramref name="components"/> into the empty <paramref name="destination"/>, through the
    /// cache: level-0 pieces left of the range's coarsest run directly, every other group through its entry (pieces
    /// ending in the range's last 10 s before <paramref name="until"/>, the normalised end, in groups of their own). Returns the number of trees merged into the destination, or −1 when
    /// a tree was no longer the one collected (retention or a compaction raced the query): the destination may then
    /// hold part of the result, and the caller clears it and collects again.
    /// With <paramref name="maxNodes"/> &gt; 0 the destination receives the sum already truncated to maxNodes
    /// (<see cref="ProfileTree.MergeTruncated"/>): the direct pieces go into a staging tree of the destination's store,
    /// the entries stay under their gates, and the kept nodes are taken from them all at once, without copying the
    /// entries into the destination (their copy was most of a render's time). The gates are then held together, taken
    /// in the groups' order — the same total order of keys in every query, so two queries never wait for each other's.
    /// </summary>
    public int Merge(string tenant, string selector, long until, List<(int Level, long Start)> pieces, List<MergeComponent> components,
        ProfileTree destination, Func<long> room, QueryTiming? timing = null, long maxNodes = 0)
    {
        int top = 0; // first piece of the coarsest level: pieces before it are the range's left side
        for (int p = 1; p < pieces.Count; p++)
        {
            if (pieces[p].Level > pieces[top].Level) top = p;
        }
        // Each piece's place in the decomposition, decided once: the grouping below and the aligned runs both read it.
        var sideOf = new Side[pieces.Count];
        for (int p = 0; p < pieces.Count; p++)
        {
            int level = pieces[p].Level;
            Side side = p < top ? Side.Left : level == pieces[top].Level ? Side.Top : Side.Right;
            // Pieces ending within the newest 10 s of the range, which writes still in flight may change, have a group of
            // their own: a change there rebuilds only that small group, not the stable ones beside it. A truncated sum
            // reads those in place instead (no entry at all), and also coarser pieces ending within the newest 20 s: agents
            // upload an interval after it ends, so a block the range has just passed still takes writes for a few seconds,
            // and in a group each one rebuilt the whole group (the slowest renders at 100 M nodes: a 100 s block's last
            // uploads landing after it joined the right side's level-1 group, 16 trees merged again, 130–190 ms). Level-0
            // pieces of the 10 s before go to the right side's level-0 group as before (small trees: cheap to rebuild,
            // and read in place they would add their nodes to every render's totals pass).
            long end = pieces[p].Start + BucketMath.Size(level);
            bool newest = end > until - BucketMath.Resolution;
            if (maxNodes > 0 && (newest || (level > 0 && end > until - SettlingSeconds))) side = Side.Settling;
            else if (newest) side = Side.Newest;
            sideOf[p] = side;
        }
        // The pieces of each level on the left side and in the coarsest run, as aligned runs: part of their groups' keys.
        Dictionary<(int Level, long Start), (long Start, int Pieces)> runs = AlignedRuns(pieces, sideOf);
        var groups = new SortedDictionary<(int Level, Side Side, (long Start, int Pieces) Run), List<MergeComponent>>();
        var direct = new List<MergeComponent>();
        var settling = new List<MergeComponent>();
        foreach (MergeComponent c in components)
        {
            int level = pieces[c.Piece].Level;
            Side side = sideOf[c.Piece];
            if (side == Side.Settling)
            {
                settling.Add(c);
                continue;
            }
            // Direct: level-0 pieces left of the coarsest run (the moving start changes that group at every step).
            if (level == 0 && side == Side.Left)
            {
                direct.Add(c);
                continue;
            }
            (long, int) run = side is Side.Left or Side.Top ? runs[(level, pieces[c.Piece].Start)] : default;
            if (!groups.TryGetValue((level, side, run), out List<MergeComponent>? list)) groups.Add((level, side, run), list = []);
            list.Add(c);
        }
        List<Entry>? held = maxNodes > 0 ? [] : null;
        ProfileTree target = held != null ? destination.Store.CreateTree() : destination; // staging when truncating
        try
        {
            return MergeGroups(tenant, selector, groups, direct, settling, destination, target, held, room, timing, maxNodes);
        }
        finally
        {
            if (held != null)
            {
                foreach (Entry e in held) Monitor.Exit(e.Gate);
                destination.Store.Remove(target);
                Trim(room); // the trims after each group skipped the entries held for the sum: they may go now

            }
        }
    }

    /// <summary>The groups, coarsest first, then the direct pieces, into <paramref name="target"/> (the destination, or
    /// the staging tree of a truncated sum whose entries are added to <paramref name="held"/> with their gates held).</summary>
    private int MergeGroups(string tenant, string selector, SortedDictionary<(int Level, Side Side, (long Start, int Pieces) Run), List<MergeComponent>> groups,
        List<MergeComponent> direct, List<MergeComponent> settling, ProfileTree destination, ProfileTree target, List<Entry>? held, Func<long> room, QueryTiming? timing, long maxNodes)
    {
        int merged = 0;
        // Coarsest groups first: the first tree merged into the empty destination is copied node for node (the engine's
        // copy path, no lookups), and the coarse entries are the large ones; the finer groups and direct pieces are then
        // merged into it. The order does not change the sum.
        foreach (var ((level, side, run), group) in groups.Reverse())
        {
            // Keys: the right side's groups (no run) do not depend on the range's length (level k holds the finished level-k
            // blocks of the newest level-(k+1) block); left and coarsest-run groups are aligned runs at fixed places in time.
            // So renders of the last hour and the last day share every entry they both cover.
            var key = new EntryKey(tenant, selector, level, side, run);
            bool done;
            try
            {
                done = MergeGroup(key, group, target, timing, held);
            }
            finally
            {
                Trim(room); // also after a refused or raced group: the entries it grew must not stay past the room
            }
            if (!done) return -1;
            merged++;
        }
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        foreach (IGrouping<Shard, MergeComponent> shard in direct.GroupBy(c => c.Shard))
        {
            MergeComponent[] part = [.. shard];
            if (!shard.Key.MergeCollected(target, part)) return -1;
            merged += part.Length;
        }
        if (timing != null) timing.DirectMs += QueryTiming.Lap(ref started);
        if (held == null) return merged;
        // The settling pieces' stored trees, read in place under their shards' removal locks (ascending shard number: see
        // Shard.TryLendCollected), or merged into the staging tree where the backend has no engine trees (Baseline).
        var sources = new List<ProfileTree>(held.Count + 1 + settling.Count) { target };
        foreach (Entry e in held) sources.Add(e.Tree!.Value);
        var lent = new List<Shard>();
        try
        {
            foreach (IGrouping<Shard, MergeComponent> shard in settling.GroupBy(c => c.Shard).OrderBy(g => g.Key.Number))
            {
                MergeComponent[] part = [.. shard];
                switch (shard.Key.TryLendCollected(part, sources))
                {
                    case Shard.Lending.Lent:
                        lent.Add(shard.Key);
                        break;
                    case Shard.Lending.NotLendable:
                        if (!shard.Key.MergeCollected(target, part)) return -1;
                        break;
                    default:
                        return -1;
                }
                merged += part.Length;
            }
            destination.MergeTruncated(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(sources), maxNodes);
            if (timing != null)
            {
                timing.SumMs += QueryTiming.Lap(ref started);
                // Counted while the shards are still held: once released, a compaction may swap and free a lent tree's store.
                foreach (ProfileTree tree in sources) timing.CopyNodes += tree.NodeCount;
            }
        }
        finally
        {
            foreach (Shard shard in lent) shard.EndLending();
        }
        return merged;
    }

    /// <summary>
    /// Splits each level's pieces on the left side and in the coarsest run into aligned runs: over the pieces' indices
    /// in time (start / size), a run starts at index i and holds the largest power of two n of pieces with i a multiple of
    /// n that stays within the level's pieces. Returns, per (level, piece start), the piece's run (its start and pieces:
    /// both in the key, so two ranges whose runs start at one place but differ in length never share an entry). Why: as
    /// the range moves, these sides lose pieces at their start (and the coarsest run gains pieces at its end); a group
    /// keyed by the side would be rebuilt from all its stored trees each time a piece leaves it (the slowest renders
    /// under ingest, 65–180 ms), while a run at a fixed place keeps its entry until a write lands in one of its pieces,
    /// and a new run merges at most half of the pieces the side holds.
    /// </summary>
    private static Dictionary<(int Level, long Start), (long Start, int Pieces)> AlignedRuns(List<(int Level, long Start)> pieces, Side[] sideOf)
    {
        var byLevel = new Dictionary<int, List<long>>();
        for (int p = 0; p < pieces.Count; p++)
        {
            if (sideOf[p] is not (Side.Left or Side.Top)) continue; // right and newest groups are kept by level as before
            var (level, start) = pieces[p];
            if (!byLevel.TryGetValue(level, out List<long>? starts)) byLevel.Add(level, starts = []);
            starts.Add(start);
        }
        var runOf = new Dictionary<(int Level, long Start), (long Start, int Pieces)>();
        foreach (var (level, starts) in byLevel)
        {
            long size = BucketMath.Size(level);
            starts.Sort();
            int i = 0;
            while (i < starts.Count)
            {
                long index = starts[i] / size;
                // The longest aligned run from here whose pieces are all in the list (consecutive indices).
                long n = 1;
                while ((index % (n * 2)) == 0 && i + n * 2 <= starts.Count && starts[i + (int)(n * 2) - 1] == starts[i] + (n * 2 - 1) * size) n *= 2;
                for (int k = 0; k < n; k++) runOf[(level, starts[i + k])] = (starts[i], (int)n);
                i += (int)n;
            }
        }
        return runOf;
    }

    /// <summary>Brings the entry of <paramref name="key"/> to exactly <paramref name="group"/>'s trees and merges it into
    /// <paramref name="destination"/> — or, given <paramref name="held"/>, adds it there with its gate still held (the
    /// caller sums it and releases the gate); false when a tree was no longer the one collected (the entry is then dropped).</summary>
    private bool MergeGroup(EntryKey key, List<MergeComponent> group, ProfileTree destination, QueryTiming? timing, List<Entry>? held)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        Entry entry = Enter(key);
        bool keepGate = false;
        if (timing != null) timing.GateMs += QueryTiming.Lap(ref started);
        try
        {
            var wanted = new Dictionary<(Shard, int), MergeComponent>(group.Count);
            foreach (MergeComponent c in group) wanted[(c.Shard, c.Tree)] = c;
            bool valid = entry.Tree != null, fresh = !valid;
            foreach (var (place, had) in entry.Components)
            {
                if (!valid) break;
                valid = wanted.TryGetValue(place, out MergeComponent now) && ReferenceEquals(now.Backend, had.Backend) && now.Stamp == had.Stamp;
            }
            if (!valid)
            {
                entry.Reset();
                Interlocked.Increment(ref _rebuilt);
            }
            List<MergeComponent> missing = [.. group.Where(c => !entry.Components.ContainsKey((c.Shard, c.Tree)))];
            if (missing.Count > 0)
            {
                if (valid) Interlocked.Increment(ref _extended);
                try
                {
                    entry.Open(limitBytes);
                    foreach (IGrouping<Shard, MergeComponent> shard in missing.GroupBy(c => c.Shard))
                    {
                        MergeComponent[] part = [.. shard];
                        if (!shard.Key.MergeCollected(entry.Tree!.Value, part))
                        {
                            entry.Reset();
                            return false;
                        }
                        foreach (MergeComponent c in part) entry.Components[(c.Shard, c.Tree)] = c;
                    }
                    if (timing != null)
                    {
                        double ms = QueryTiming.Lap(ref started);
                        if (valid)
                        {
                            timing.Extended++;
                            timing.ExtendMs += ms;
                            timing.ExtendTrees += missing.Count;
                            timing.ExtendNodes += entry.Tree!.Value.NodeCount;
                        }
                        else
                        {
                            timing.Rebuilt++;
                            if (fresh) timing.NewMs += ms;
                            else if (key.Side == Side.Newest) timing.NewestMs += ms;
                            else timing.RebuildMs += ms;
                            timing.RebuildTrees += missing.Count;
                            timing.RebuildNodes += entry.Tree!.Value.NodeCount;
                        }
                    }
                }
                catch (StoreLimitExceededException)
                {
                    // The group's merge alone is larger than the whole cache: not cached, merged directly.
                    entry.Reset();
                    foreach (IGrouping<Shard, MergeComponent> shard in group.GroupBy(c => c.Shard))
                    {
                        if (!shard.Key.MergeCollected(destination, [.. shard])) return false;
                    }
                    return true;
                }
                catch
                {
                    entry.Reset(); // partly extended: its contents no longer match its list
                    throw;
                }
            }
            else
            {
                Interlocked.Increment(ref _hits);
                if (timing != null) timing.Hits++;
                started = System.Diagnostics.Stopwatch.GetTimestamp();
            }
            entry.Bytes = entry.Store!.NativeBytes;
            if (held != null)
            {
                held.Add(entry);
                keepGate = true;
                return true;
            }
            using (TreeMergeSession session = destination.BeginMerge(entry.Store!))
                session.Merge(entry.Tree!.Value);
            if (timing != null)
            {
                timing.CopyMs += QueryTiming.Lap(ref started);
                timing.CopyNodes += entry.Tree!.Value.NodeCount;
            }
            return true;
        }
        finally
        {
            lock (_lock)
            {
                entry.LastUsed = ++_clock;
                if (entry.Store == null && _entries.TryGetValue(key, out Entry? mapped) && ReferenceEquals(mapped, entry))
                {
                    // Left empty (refused, too large for the cache, or raced): no entry rather than an empty one.
                    _entries.Remove(key);
                    entry.Evicted = true;
                }
            }
            if (!keepGate) Monitor.Exit(entry.Gate);
        }
    }

    /// <summary>The entry of <paramref name="key"/> (new and empty if absent), with its gate held.</summary>
    private Entry Enter(EntryKey key)
    {
        for (int attempt = 0; ; attempt++)
        {
            Entry entry;
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (!_entries.TryGetValue(key, out entry!)) _entries.Add(key, entry = new Entry());
            }
            Monitor.Enter(entry.Gate);
            if (!entry.Evicted) return entry;
            Monitor.Exit(entry.Gate); // evicted between the lookup and the gate: look it up again
            if (attempt >= 100) throw new InvalidOperationException($"merge cache entry of {key.Tenant}/{key.Selector} was evicted 100 times while being entered");
        }
    }

    /// <summary>Evicts least recently used entries not in use until the entries fit the cache's limit and
    /// <paramref name="room"/> (what the native budget leaves beside the shards; long.MaxValue without a budget).</summary>
    private void Trim(Func<long> room)
    {
        while (true)
        {
            Entry? victim = null;
            lock (_lock)
            {
                long bytes = _entries.Values.Sum(e => e.Bytes);
                if (bytes <= Math.Min(limitBytes, room()) && _entries.Count <= MaxEntries) return;
                foreach (Entry e in _entries.Values.OrderBy(e => e.LastUsed))
                {
                    // Not one this thread holds for a truncated sum in progress (the gate is reentrant: TryEnter would succeed).
                    if (Monitor.IsEntered(e.Gate) || !Monitor.TryEnter(e.Gate)) continue;
                    victim = e;
                    break;
                }
                if (victim == null) return; // every entry in use: trimmed by the next query
                _entries.Remove(_entries.First(kv => ReferenceEquals(kv.Value, victim)).Key);
            }
            Evict(victim);
        }
    }

    /// <summary>Evicts every entry not in use now (a write the native budget refused asks for the room first).
    /// Returns the bytes freed.</summary>
    public long Reclaim()
    {
        var victims = new List<Entry>();
        lock (_lock)
        {
            foreach (var (key, e) in _entries.ToList())
            {
                if (Monitor.IsEntered(e.Gate) || !Monitor.TryEnter(e.Gate)) continue;
                _entries.Remove(key);
                victims.Add(e);
            }
        }
        long freed = 0;
        foreach (Entry e in victims)
        {
            freed += e.Bytes;
            Evict(e);
        }
        return freed;
    }

    /// <summary>Frees an entry taken out of the map whose gate the caller holds.</summary>
    private void Evict(Entry e)
    {
        try
        {
            e.Evicted = true;
            e.Reset();
            Interlocked.Increment(ref _evicted);
        }
        finally
        {
            Monitor.Exit(e.Gate);
        }
    }

    public void Dispose()
    {
        List<Entry> all;
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            all = [.. _entries.Values];
            _entries.Clear();
        }
        foreach (Entry e in all)
        {
            Monitor.Enter(e.Gate); // a query still merging from it finishes first
            Evict(e);
        }
    }

    /// <summary>Where a piece lies in its query's decomposition: before the coarsest run, in it, after it; or, whatever
    /// its place, ending in the range's last 10 s.</summary>
    private enum Side { Left, Top, Right, Newest, Settling }

    /// <summary>A truncated sum reads the pieces ending this close to the range's end in place (<see cref="Side.Settling"/>).</summary>
    private const long SettlingSeconds = 2 * BucketMath.Resolution;

    /// <summary>An entry's key: <paramref name="Run"/> is an aligned run's start and pieces (left side and coarsest run),
    /// else (0, 0). No key depends on the range's length: a 1 h and a 24 h render share every entry they both cover.</summary>
    private readonly record struct EntryKey(string Tenant, string Selector, int Level, Side Side, (long Start, int Pieces) Run);

    /// <summary>A cached merge: its own store and tree, and the stored trees (with stamps) it is the sum of.</summary>
    private sealed class Entry
    {
        public readonly object Gate = new();
        public TreeStore? Store;
        public ProfileTree? Tree;
        public readonly Dictionary<(Shard, int), MergeComponent> Components = [];
        public long Bytes;
        public long LastUsed;
        public bool Evicted;

        /// <summary>A store (capped at <paramref name="maxBytes"/>, the whole cache's limit) and empty tree, if the entry has none.</summary>
        public void Open(long maxBytes)
        {
            if (Store != null) return;
            // Kept totals: a truncated sum reads an unchanged entry's totals instead of a pass over its nodes.
            Store = new TreeStore(new TreeStoreOptions { MaxNativeBytes = maxBytes, KeepSubtreeTotals = true });
            Tree = Store.CreateTree();
        }

        /// <summary>Back to empty: the store (with its names) freed, no trees listed.</summary>
        public void Reset()
        {
            Store?.Dispose();
            Store = null;
            Tree = null;
            Components.Clear();
            Bytes = 0;
        }
    }
}
