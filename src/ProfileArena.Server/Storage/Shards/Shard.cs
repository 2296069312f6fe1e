using System.Buffers;
using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using ProfileArena.Server.Buffers;
using ProfileArena.Server.Storage.Media;
using ProfileArena.Server.Storage.Series;
using ProfileArena.Server.Storage.Trees;
using ProfileArena.Server.Storage.Wal;

namespace ProfileArena.Server.Storage.Shards;

/// <summary>
/// One shard: the series of one tenant whose shard hash falls here, with their own trees, series index,
/// WAL and snapshots under <c>DataDir/&lt;tenant dir&gt;/shard-N/</c>. Nothing is shared with other shards but
/// the storage-wide budget check and the clock, so a shard can move to another process (issue 12: an Orleans
/// grain keyed <c>tenant/shard-N</c>).
/// <para>Threads: two stages per shard, acknowledgement first. The <b>writer</b> loop (a pool task) takes queued
/// writes as a group, admits them (budget, overflow), writes them to the WAL with one fsync, hands the durable group
/// (its own copies of the stacks, its budget reservation) to the <b>apply</b> stage (<see cref="ApplyStage"/>, one
/// dedicated thread), and only then acknowledges it; it goes on with the next group while the apply stage merges this
/// one into the trees, in WAL order. So an acknowledgement waits for its fsync, not for its own apply nor for earlier
/// groups' applies. The acknowledged but unapplied backlog is bounded by <see cref="StorageOptions.MaxUnappliedBytes"/>:
/// past it the writer takes no new group (new acknowledgements wait) until the apply stage catches up.
/// Read-your-writes: every query first waits until the apply stage has applied every group handed over before the
/// query started that writes a series the query reads (<see cref="WaitForAcknowledged(SeriesSelector, QueryTiming)"/>), so it sees
/// every write acknowledged before it to what it reads. Snapshots, retention, compaction and stop run on the
/// writer loop with the apply stage empty (the writer waits for it first, and hands nothing over meanwhile), so they
/// see trees and index exactly as of the last durable record and never race an apply. State the two stages share:
/// the trees and index (under the locks below), the totals admitted but not yet applied (<c>_unapplied</c>, own lock)
/// and <c>_broken</c>; prepared parts of calls spanning shards are the writer's alone. Queries run on the callers'
/// threads: they take the index lock to find trees and the removal lock (shared) while they merge, so retention
/// (exclusive) never frees a tree a query is reading; the engine's per-tree locks let merges and inserts of the same
/// tree interleave safely.</para>
/// </summary>
internal sealed class Shard : IDisposable
{
    private readonly StorageOptions _options;
    private readonly Func<long> _now;
    private readonly NativeBudget _budget;
    private readonly ILogger _log;
    private readonly int _levels;
    // Replaced by a compaction (on the loop, under the removal lock held exclusively); read by queries under the
    // removal lock and by the lock-free counters through ReadTrees.
    private volatile ITreeBackend _trees;
    private readonly object _indexLock = new();
    private readonly Dictionary<SeriesKey, SeriesState> _series = [];
    private readonly ReaderWriterLockSlim _removal = new(LockRecursionPolicy.NoRecursion);
    private readonly Channel<Work> _work = Channel.CreateUnbounded<Work>(new UnboundedChannelOptions { SingleReader = true });
    // Writer only: parts of calls spanning shards, durable and waiting for their commit or abort.
    private readonly Dictionary<long, PreparedPart> _prepared = [];
    // Totals per bucket admitted but not yet in the trees (prepared parts, and writes from admission until the apply
    // stage applied them): admission adds them to the trees' totals so no bucket can pass 2^64 − 1. Lock: itself.
    private readonly Dictionary<Target, ulong> _unapplied = [];
    private readonly ApplyStage _apply;
    // The groups handed to the apply stage and not yet known to be applied, oldest first: the group's number in the stage
    // (its count of groups handed over once this one was) and the series its records write. A query waits only for the
    // newest of them that writes a series it reads (WaitForAcknowledged). The writer adds (under the lock, together with
    // the hand-over) and drops those applied; queries read. Lock: itself.
    private readonly List<(long Group, SeriesKey[] Series)> _unappliedGroups = [];
    // The records of one write group, reused group after group (a fresh writer per group put its megabyte
    // arrays on the Large Object Heap at every push); dropped when one huge group made it much bigger than usual.
    private ArrayBufferWriter<byte> _groupRecords = new();
    private WalLog? _wal;
    private Task? _loop;
    private long _nextSeq = 1;
    private long _snapshotSeq;
    private volatile string? _broken;
    private long _sizeSnapshotAt;
    // Compaction (loop only): the name bytes the live trees used at the last compaction or at open, and how many trees
    // were removed since then (0: no name can have died, so there is nothing to reclaim).
    private long _liveNameBytes;
    private long _treesRemovedSinceCompaction;

    private readonly IShardMedium _medium;

    private Shard(string tenant, int number, IShardMedium medium, StorageOptions options, Func<long> now, NativeBudget budget, ILogger log)
    {
        Tenant = tenant;
        Number = number;
        _medium = medium;
        _options = options;
        _levels = options.Levels;
        _now = now;
        _budget = budget;
        _log = log;
        _trees = TreeBackends.CreateEmpty(options);
        _sizeSnapshotAt = options.WalSnapshotBytes;
        _apply = new ApplyStage($"{tenant}/shard-{number}");
    }

    public string Tenant { get; }

    public int Number { get; }

    /// <summary>Where the shard's WAL and snapshots live (a directory, or a blob container and prefix), for messages.</summary>
    public string Location => _medium.Location;

    /// <summary>Trees merged by queries so far (the O(log range) test reads it).</summary>
    public long TreesMergedByQueries => Interlocked.Read(ref _treesMerged);
    private long _treesMerged;

    /// <summary>WAL records written and group fsyncs since the shard opened (group commit: fewer fsyncs than records).</summary>
    public (long Records, long Syncs) WalWrites => (Interlocked.Read(ref _records), Interlocked.Read(ref _syncs));
    private long _records, _syncs;

    /// <summary>Compactions done, native bytes they gave back (old store's bytes − new store's), and compactions skipped
    /// because the copy would not fit the budget; for /metrics.</summary>
    public (long Count, long ReclaimedBytes, long Skipped) Compactions =>
        (Interlocked.Read(ref _compactions), Interlocked.Read(ref _compactionReclaimed), Interlocked.Read(ref _compactionsSkipped));
    private long _compactions, _compactionReclaimed, _compactionsSkipped;

    /// <summary>Queries and writer waits pending on the apply stage now (tests).</summary>
    internal int ApplyWaiters => _apply.Waiters;

    /// <summary>Times the writer waited because the unapplied backlog had reached <see cref="StorageOptions.MaxUnappliedBytes"/>.</summary>
    public long BacklogWaits => Interlocked.Read(ref _backlogWaits);
    private long _backlogWaits;

    /// <summary>Time the apply stage spent applying durable groups to memory (the merges into every level), for /metrics.</summary>
    public TimeSpan ApplyTime => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _applyTicks));
    private long _applyTicks;
    private long _applyEpoch; // odd while the apply stage applies a group and gives back its unapplied totals (ConsistentCount)

    /// <summary>Opens (or creates) the shard in <paramref name="directory"/>: loads the newest snapshot, replays
    /// the WAL after it, cuts a torn tail, then starts the loop.</summary>
    /// <exception cref="InvalidDataException">A snapshot, index or WAL record is corrupt (file and offset named).</exception>
    public static Shard Open(string tenant, int number, string directory, StorageOptions options, Func<long> now, NativeBudget budget, ILogger log) =>
        Open(tenant, number, new LocalShardMedium(directory), options, now, budget, log);

    /// <summary>Opens (or creates) the shard on <paramref name="medium"/> (which the shard then owns and disposes):
    /// takes ownership of it first (a shared medium fences out any earlier writer), then recovers as above.</summary>
    /// <exception cref="InvalidDataException">A snapshot, index or WAL record is corrupt (file or blob and offset named).</exception>
    /// <exception cref="StorageUnavailableException">The medium cannot be reached or ownership not taken.</exception>
    public static Shard Open(string tenant, int number, IShardMedium medium, StorageOptions options, Func<long> now, NativeBudget budget, ILogger log)
    {
        var shard = new Shard(tenant, number, medium, options, now, budget, log);
        try
        {
            medium.TakeOwnership();
            shard.Recover();
            shard._liveNameBytes = shard._trees.NameBytes; // an upper bound: the snapshot may still hold dead names
            shard._wal = WalLog.Open(medium.Wal, shard._nextSeq);
            shard._loop = Task.Run(shard.RunLoop);
            return shard;
        }
        catch
        {
            shard._apply.Complete(discard: true);
            shard._apply.Join();
            shard._trees.Dispose();
            shard._wal?.Dispose();
            medium.Dispose();
            throw;
        }
    }

    // ---------------------------------------------------------------- writes (called by ProfileStorage)

    /// <summary>Queues this shard's part of an ingest call; completes when durable (acknowledged: applied to memory
    /// after, and before any later query reads the shard). The shard keeps no reference to <paramref name="profiles"/>
    /// past the task's completion: what it still has to apply, it copied.</summary>
    public Task Enqueue(WorkKind kind, List<IngestProfile>? profiles, long txn)
    {
        var work = new Work(kind, profiles, txn, kind is WorkKind.Ingest or WorkKind.Prepare ? WalPayload.Encode(profiles!, txn) : null);
        if (!_work.Writer.TryWrite(work)) work.Fail(new StorageUnavailableException($"shard {this} is stopped"));
        return work.Done.Task;
    }

    /// <summary>Stops the loop after the work queued so far (snapshotting first when <paramref name="snapshot"/>).</summary>
    public async Task StopAsync(bool snapshot)
    {
        if (snapshot)
        {
            try
            {
                await Enqueue(WorkKind.Snapshot, null, 0).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or StorageUnavailableException)
            {
                // The WAL still holds every acknowledged record: the next start replays it.
                _log.LogError(e, "Shard {Shard}: snapshot at stop failed; the next start replays the WAL", this);
            }
        }
        Task stop = Enqueue(WorkKind.Stop, null, 0);
        _work.Writer.TryComplete();
        await stop.ConfigureAwait(false);
        if (_loop != null) await _loop.ConfigureAwait(false);
        await _apply.Ended.ConfigureAwait(false);
    }

    /// <summary>Blocks until every write acknowledged so far is applied to memory (Stats).</summary>
    public void WaitForAcknowledged() => _apply.WaitApplied(_apply.Queued);

    /// <summary>Read-your-writes for a query of the series matching <paramref name="selector"/> (null: every series):
    /// blocks until every write acknowledged so far to such a series is applied to memory. Writes to other series do not
    /// change what the query reads (trees, index entries and metadata are per series), so it does not wait behind them:
    /// only up to the newest unapplied group that writes a matching series (groups apply in order). A group acknowledged
    /// after this call may or may not be waited for; one acknowledged before it is in <c>_unappliedGroups</c> or applied,
    /// because the writer lists a group when it hands it over, before acknowledging it. The time waited goes to
    /// <paramref name="timing"/>'s wait.</summary>
    public void WaitForAcknowledged(SeriesSelector? selector, QueryTiming? timing = null)
    {
        long needed = 0;
        lock (_unappliedGroups)
        {
            for (int g = _unappliedGroups.Count - 1; g >= 0 && needed == 0; g--)
            {
                foreach (SeriesKey series in _unappliedGroups[g].Series)
                {
                    if (selector != null && !selector.Matches(series)) continue;
                    needed = _unappliedGroups[g].Group;
                    break;
                }
            }
        }
        if (needed == 0) return;
        long started = Stopwatch.GetTimestamp();
        _apply.WaitApplied(needed);
        if (timing != null) timing.WaitMs += Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }

    /// <summary>Completes once every write acknowledged so far is applied to memory (for callers that must not block a thread).</summary>
    public Task WhenAcknowledgedApplied() => _apply.WhenApplied(_apply.Queued);

    public override string ToString() => $"{Tenant}/shard-{Number}";

    // ---------------------------------------------------------------- the loop

    private async Task RunLoop()
    {
        ChannelReader<Work> reader = _work.Reader;
        var group = new List<Work>();
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (true)
            {
                if (_apply.BacklogBytes >= _options.MaxUnappliedBytes)
                {
                    // Backpressure: the apply stage is behind by the bound; new groups (their acknowledgements) wait.
                    Interlocked.Increment(ref _backlogWaits);
                    await _apply.WhenBacklogBelow(_options.MaxUnappliedBytes).ConfigureAwait(false);
                }
                group.Clear();
                long bytes = 0;
                Work? control = null;
                while (bytes < _options.WalGroupBytes && reader.TryRead(out Work? w))
                {
                    if (w.Kind is WorkKind.Ingest or WorkKind.Prepare or WorkKind.Commit)
                    {
                        group.Add(w);
                        bytes += w.PayloadLength;
                    }
                    else
                    {
                        control = w;
                        break;
                    }
                }
                if (group.Count > 0)
                {
                    try
                    {
                        ProcessGroup(group);
                    }
                    catch (Exception e)
                    {
                        // A bug, not an input problem: fail this group, refuse further writes, keep answering queries.
                        _broken ??= $"shard {this} failed unexpectedly ({e.GetType().Name}: {e.Message}); it refuses writes until restart";
                        _log.LogCritical(e, "{Problem}", _broken);
                        foreach (Work w in group) w.Fail(new StorageUnavailableException(_broken, e));
                    }
                }
                // Everything but an abort reads or replaces the trees: it runs with the apply stage empty.
                if (control != null && control.Kind != WorkKind.Abort) await DrainApplyStage().ConfigureAwait(false);
                if (control != null && ProcessControl(control))
                {
                    // Stopped: nothing more is accepted; whatever was queued behind the stop fails instead of hanging.
                    _work.Writer.TryComplete();
                    while (reader.TryRead(out Work? late)) late.Fail(new StorageUnavailableException($"shard {this} is stopped"));
                    _apply.Complete(discard: false); // empty already: its thread ends
                    return;
                }
                if (group.Count == 0 && control == null) break;
                if (_wal != null && _wal.Bytes >= _sizeSnapshotAt && _broken == null)
                {
                    await DrainApplyStage().ConfigureAwait(false);
                    TrySnapshot();
                    _sizeSnapshotAt = _wal.Bytes + _options.WalSnapshotBytes; // after a failure, retry only after as much again
                }
            }
        }
    }

    /// <summary>Waits until the apply stage has applied everything handed over (the writer hands nothing over meanwhile).</summary>
    private Task DrainApplyStage() => _apply.WhenApplied(_apply.Queued);

    private bool ProcessControl(Work work)
    {
        try
        {
            switch (work.Kind)
            {
                case WorkKind.Abort:
                    if (_prepared.Remove(work.Txn, out PreparedPart? part))
                    {
                        Unreserve(part.Reserved);
                        part.Dispose();
                    }
                    break;
                case WorkKind.Snapshot:
                    if (_broken != null) throw new StorageUnavailableException(_broken);
                    Snapshot();
                    break;
                case WorkKind.Retention:
                    RemoveExpired();
                    CompactIfWorthIt();
                    break;
                case WorkKind.Compact:
                    if (_broken == null && _trees.NameBytes > 0) Compact();
                    break;
                case WorkKind.Stop:
                    work.Succeed();
                    return true;
            }
            work.Succeed();
        }
        catch (Exception e)
        {
            work.Fail(e);
        }
        return false;
    }

    private void ProcessGroup(List<Work> group)
    {
        var accepted = new List<Admitted>(group.Count);
        ArrayBufferWriter<byte> records = _groupRecords;
        records.ResetWrittenCount();
        if (records.Capacity > 4L * _options.WalGroupBytes) _groupRecords = records = new ArrayBufferWriter<byte>();
        var committing = new HashSet<long>();
        foreach (Work w in group)
        {
            try
            {
                if (_broken != null) throw new StorageUnavailableException(_broken);
                if (w.Kind == WorkKind.Commit)
                {
                    if (!_prepared.ContainsKey(w.Txn) || !committing.Add(w.Txn)) throw new InvalidOperationException($"no prepared part {w.Txn} in shard {this}");
                    WalFraming.Write(records, WalRecordKind.Commit, _nextSeq + accepted.Count, WalPayload.EncodeCommit(w.Txn));
                    accepted.Add(new Admitted(w, 0, []));
                }
                else
                {
                    var (reserved, targets) = Admit(w.Profiles!);
                    try
                    {
                        WalFraming.Write(records, w.Kind == WorkKind.Ingest ? WalRecordKind.Ingest : WalRecordKind.Prepare, _nextSeq + accepted.Count, w.Payload!.WrittenSpan);
                    }
                    catch
                    {
                        _budget.Release(reserved);
                        Unreserve(targets);
                        throw;
                    }
                    accepted.Add(new Admitted(w, reserved, targets));
                }
            }
            catch (Exception e)
            {
                w.Fail(e);
            }
        }
        if (accepted.Count == 0) return;
        try
        {
            _wal!.Append(records.WrittenSpan);
        }
        catch (Exception e)
        {
            // Not durable: nothing of the group was acknowledged or handed over; its admissions are given back.
            foreach (Admitted a in accepted)
            {
                _budget.Release(a.Reserved);
                Unreserve(a.Targets);
            }
            if (e is not StorageUnavailableException unavailable) throw;
            if (unavailable is ShardFencedException fenced) MarkFenced(fenced);
            foreach (Admitted a in accepted) a.Work.Fail(unavailable);
            return;
        }
        _nextSeq += accepted.Count;
        if (_wal.SegmentFull) RotateFullSegment();
        Interlocked.Add(ref _records, accepted.Count);
        Interlocked.Exchange(ref _syncs, _wal.Syncs);

        // Durable. What the apply stage needs it owns: copies of the stacks (the callers return theirs to the pool once
        // acknowledged), the parts of committed calls, the budget reservations (given back once applied).
        var durable = new List<DurableRecord>(accepted.Count);
        long bytes = 0;
        foreach (Admitted a in accepted)
        {
            Work w = a.Work;
            bytes += w.PayloadLength;
            switch (w.Kind)
            {
                case WorkKind.Ingest:
                    durable.Add(new DurableRecord([.. w.Profiles!.Select(p => p with { Stacks = p.Stacks.Copy() })], a.Reserved, a.Targets));
                    break;
                case WorkKind.Prepare:
                    // Held by the writer until its commit or abort (a snapshot re-encodes it); holds no budget, as before
                    // (the budget is checked again by nothing at commit: the part's size was admitted here).
                    Prepared(w.Txn, new PreparedPart([.. w.Profiles!.Select(p => p with { Stacks = p.Stacks.Copy() })], a.Targets), reserve: false); // admission reserved its totals
                    _budget.Release(a.Reserved);
                    break;
                case WorkKind.Commit:
                    _prepared.Remove(w.Txn, out PreparedPart? part);
                    durable.Add(new DurableRecord(part!.Profiles, 0, part.Reserved));
                    break;
            }
        }
        if (durable.Count > 0 && !HandOver(bytes, durable))
        {
            // The shard is being disposed: its WAL has the records (a restart replays them), memory never will.
            Drop(durable);
            foreach (Admitted a in accepted) a.Work.Fail(new StorageUnavailableException($"shard {this} is stopped"));
            return;
        }
        foreach (Admitted a in accepted) a.Work.Succeed();
    }

    /// <summary>Hands a durable group to the apply stage and lists it (with the series it writes) among the unapplied
    /// groups queries look at, in one step under the list's lock; drops the groups listed earlier that are applied by now.
    /// False when the stage is completing (nothing was handed over).</summary>
    private bool HandOver(long bytes, List<DurableRecord> durable)
    {
        SeriesKey[] series = [.. durable.SelectMany(r => r.Profiles).Select(p => p.Series).Distinct()];
        lock (_unappliedGroups)
        {
            long applied = _apply.Applied;
            int done = 0;
            while (done < _unappliedGroups.Count && _unappliedGroups[done].Group <= applied) done++;
            _unappliedGroups.RemoveRange(0, done);
            if (!_apply.Add(bytes, () => ApplyDurable(durable), () => Drop(durable))) return false;
            _unappliedGroups.Add((_apply.Queued, series));
            return true;
        }
    }

    /// <summary>The apply stage's work for one durable, acknowledged group: applies its records in order, then gives
    /// back their budget reservations and unapplied totals and returns their copies to the pool.</summary>
    private void ApplyDurable(List<DurableRecord> records)
    {
        long started = Stopwatch.GetTimestamp();
        bool moving = false;
        try
        {
            _options.BeforeApplyForTests?.Invoke(ToString());
            Interlocked.Increment(ref _applyEpoch); // odd: totals are moving from the unapplied ones into the trees
            moving = true;
            foreach (DurableRecord r in records)
            {
                try
                {
                    Apply(r.Profiles);
                }
                catch (Exception e)
                {
                    MarkApplyFailed(e);
                }
            }
        }
        catch (Exception e)
        {
            MarkApplyFailed(e);
        }
        finally
        {
            Drop(records);
            if (moving) Interlocked.Increment(ref _applyEpoch); // even: every total of the group is in the trees, none unapplied
            Interlocked.Add(ref _applyTicks, Stopwatch.GetTimestamp() - started);
        }
    }

    /// <summary>A durable, acknowledged record memory could not take: memory and WAL now differ, so the shard stops
    /// taking writes; queries go on with what memory holds; a restart replays the WAL (and fails loudly if the record
    /// still cannot apply), so nothing acknowledged is lost.</summary>
    private void MarkApplyFailed(Exception e)
    {
        string problem = $"shard {this} could not apply a durable WAL record ({e.GetType().Name}: {e.Message}); it refuses writes until restart";
        if (_broken == null) _broken = problem;
        _log.LogCritical(e, "{Problem}", problem);
    }

    /// <summary>Releases what durable records hold: budget reservations, unapplied totals, pooled copies (idempotent per record).</summary>
    private void Drop(List<DurableRecord> records)
    {
        foreach (DurableRecord r in records) r.Release(this);
    }

    /// <summary>Records a durable prepared part (writer, and replay), counting its totals as unapplied when
    /// <paramref name="reserve"/> (replay; the writer's admission has counted them already).</summary>
    private void Prepared(long txn, PreparedPart part, bool reserve)
    {
        if (_prepared.Remove(txn, out PreparedPart? old))
        {
            Unreserve(old.Reserved);
            old.Dispose();
        }
        _prepared[txn] = part;
        if (reserve) Reserve(part.Reserved);
    }

    /// <summary>Replays one WAL record (recovery, before the stages run): what the writer and the apply stage do, at once.</summary>
    private void ReplayRecord(WorkKind kind, List<IngestProfile>? profiles, long txn)
    {
        switch (kind)
        {
            case WorkKind.Ingest:
                Apply(profiles!);
                break;
            case WorkKind.Prepare:
                // The part outlives the record's decoded batches (disposed by replay): own a copy.
                Prepared(txn, new PreparedPart([.. profiles!.Select(p => p with { Stacks = p.Stacks.Copy() })], [.. profiles!.SelectMany(Targets)]), reserve: true);
                break;
            case WorkKind.Commit:
            {
                if (!_prepared.Remove(txn, out PreparedPart? part)) throw new InvalidDataException($"commit of transaction {txn} without its prepared part");
                Unreserve(part.Reserved);
                try
                {
                    Apply(part.Profiles);
                }
                finally
                {
                    part.Dispose();
                }
                break;
            }
        }
    }

    private void Reserve(List<(Target, ulong)> targets)
    {
        lock (_unapplied)
        {
            foreach (var (target, amount) in targets) _unapplied[target] = _unapplied.GetValueOrDefault(target) + amount;
        }
    }

    private void Unreserve(List<(Target, ulong)> targets)
    {
        lock (_unapplied)
        {
            foreach (var (target, amount) in targets)
            {
                ulong left = _unapplied[target] - amount;
                if (left == 0) _unapplied.Remove(target);
                else _unapplied[target] = left;
            }
        }
    }

    /// <summary>Refuses a write the shard could not apply: over the native budget, or a bucket total past 2^64 − 1
    /// (counting what is in the trees and what is admitted but not applied yet: this group's earlier writes,
    /// acknowledged groups still in the apply stage, prepared parts). Returns the budget it reserved (an upper estimate
    /// of the write's nodes and names in every level), given back once the write is applied or refused, and the totals
    /// it added to the unapplied ones, taken off once applied.</summary>
    private (long Reserved, List<(Target, ulong)> Targets) Admit(List<IngestProfile> profiles)
    {
        long estimate = 0;
        if (_budget.Limit > 0)
        {
            foreach (IngestProfile p in profiles) estimate += _trees.GrowthEstimate(p.Stacks.ByteCount, p.Stacks.Count) * (_levels + 1);
        }
        var mine = new Dictionary<Target, ulong>(); // this call's additions per target
        foreach (IngestProfile p in profiles)
        {
            if (p.Stacks.Total == ulong.MaxValue)
                throw new OverflowException($"series {p.Series}: the values of one profile add up to 2^64 − 1 or more; nothing was stored");
            foreach (var (target, amount) in Targets(p))
            {
                // in the trees + admitted and not applied + earlier profiles of this call + this one ≤ 2^64 − 1. The
                // unapplied totals are read before the trees: a write the apply stage moves from one into the other in
                // between is then counted twice at worst, never not at all (it leaves the unapplied totals only after
                // it is in the trees). Counted twice can refuse a write that fits, so a refusal reads both again at an
                // instant no apply runs (ConsistentCount) before it stands.
                if (!Fits(UnappliedTotal(target), CurrentTotal(target), mine.GetValueOrDefault(target), amount))
                {
                    var (unapplied, inTrees) = ConsistentCount(target);
                    if (!Fits(unapplied, inTrees, mine.GetValueOrDefault(target), amount))
                        throw new OverflowException($"series {p.Series}, bucket {target.Start} of level {target.Level}: its total would pass 2^64 − 1; nothing was stored");
                }
                mine[target] = mine.GetValueOrDefault(target) + amount;
            }
        }
        _budget.Reserve(estimate); // last: a write refused above reserved nothing
        List<(Target, ulong)> targets = [.. mine.Select(kv => (kv.Key, kv.Value))];
        Reserve(targets);
        return (estimate, targets);
    }

    private IEnumerable<(Target, ulong)> Targets(IngestProfile p)
    {
        if (p.Stacks.Count == 0) yield break;
        for (int level = 0; level < _levels; level++) yield return (new Target(p.Series, level, BucketMath.Floor(p.FromSeconds, level)), p.Stacks.Total);
    }

    /// <summary>True when the four amounts add up to at most 2^64 − 1.</summary>
    private static bool Fits(ulong a, ulong b, ulong c, ulong d)
    {
        ulong room = ulong.MaxValue;
        foreach (ulong taken in (ReadOnlySpan<ulong>)[a, b, c, d])
        {
            if (taken > room) return false;
            room -= taken;
        }
        return true;
    }

    private ulong UnappliedTotal(Target target)
    {
        lock (_unapplied) return _unapplied.GetValueOrDefault(target);
    }

    /// <summary>A target's unapplied and in-tree totals read while the apply stage applies nothing (its epoch even and
    /// unchanged across both reads): each admitted write counted exactly once. Waits for a group being applied, at most
    /// <see cref="ConsistentCountWait"/> (then the unapplied-first reading, which never counts a write less than once);
    /// used only to confirm a refusal (a bucket total near 2^64), so the writer never waits for the apply stage otherwise.</summary>
    private (ulong Unapplied, ulong InTrees) ConsistentCount(Target target)
    {
        var spin = new SpinWait();
        long deadline = Stopwatch.GetTimestamp() + (long)(ConsistentCountWait.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            long epoch = Volatile.Read(ref _applyEpoch);
            bool idle = (epoch & 1) == 0;
            ulong unapplied = UnappliedTotal(target), inTrees = CurrentTotal(target);
            if ((idle && Volatile.Read(ref _applyEpoch) == epoch) || Stopwatch.GetTimestamp() > deadline) return (unapplied, inTrees);
            spin.SpinOnce(); // yields, then sleeps: an apply takes milliseconds
        }
    }

    /// <summary>Longest wait of <see cref="ConsistentCount"/> for the apply stage.</summary>
    private static readonly TimeSpan ConsistentCountWait = TimeSpan.FromSeconds(2);

    private ulong CurrentTotal(Target target)
    {
        lock (_indexLock)
        {
            if (_series.TryGetValue(target.Series, out SeriesState? s) && s.Buckets[target.Level].TryGetValue(target.Start, out int tree))
                return _trees.Total(tree);
        }
        return 0;
    }

    /// <summary>Adds the profiles to their series' bucket trees, one per level: the stacks go into a staging tree
    /// once, which is then merged into each level's bucket tree, coarsest first; when the 10 s bucket is new the
    /// staging tree becomes it (one merge fewer). Measured against inserting every stack into each
    /// level's tree directly (60,000 profiles × 6 levels): equal for 1-stack profiles, 20–25 % faster for 20- and
    /// 500-stack profiles, and 20 % less memory for small profiles, because merged-into trees never build the
    /// insert path cache. A merge is also atomic per tree: a query never sees half a profile in a bucket. Levels whose bucket has expired are skipped (replay
    /// does the same, so memory after replay equals memory before the crash).</summary>
    private void Apply(List<IngestProfile> profiles)
    {
        long now = _now();
        foreach (IngestProfile p in profiles)
        {
            SeriesState state;
            lock (_indexLock)
            {
                if (!_series.TryGetValue(p.Series, out state!))
                {
                    state = new SeriesState(p.Series, p.Metadata, _levels);
                    _series.Add(p.Series, state);
                }
                state.Metadata = p.Metadata;
            }
            if (p.Stacks.Count == 0) continue;
            int staging = _trees.Create();
            bool kept = false; // the staging tree became a new bucket's tree
            bool merged = false; // the staging tree's names are used by a bucket tree
            try
            {
                for (int i = 0; i < p.Stacks.Count; i++) _trees.Insert(staging, p.Stacks.Stack(i), p.Stacks.Value(i));
                for (int level = _levels - 1; level >= 0; level--)
                {
                    long start = BucketMath.Floor(p.FromSeconds, level);
                    if (start < FirstRetained(level, now)) continue;
                    int tree;
                    bool found;
                    lock (_indexLock) found = state.Buckets[level].TryGetValue(start, out tree);
                    if (found)
                    {
                        _trees.Merge(tree, staging);
                        merged = true;
                    }
                    else if (level == 0)
                    {
                        // The usual case (one profile per series per 10 s): the staging tree itself becomes the new
                        // 10 s bucket, saving a merge. Coarser levels were done first, so it is merged from no more.
                        lock (_indexLock) state.Buckets[level].Add(start, staging);
                        kept = true;
                    }
                    else
                    {
                        // Published only once it holds the profile: a query never sees a half-built new bucket.
                        tree = _trees.Create();
                        _trees.Merge(tree, staging);
                        merged = true;
                        lock (_indexLock) state.Buckets[level].Add(start, tree);
                    }
                }
            }
            catch
            {
                if (kept) lock (_indexLock) state.Buckets[0].Remove(BucketMath.Floor(p.FromSeconds, 0));
                kept = false;
                throw;
            }
            finally
            {
                if (!kept)
                {
                    _trees.Remove(staging);
                    if (!merged) Interlocked.Increment(ref _treesRemovedSinceCompaction); // every level expired (or a failure): its new names died with it
                }
            }
        }
    }

    /// <summary>Start of the oldest bucket of <paramref name="level"/> still kept at <paramref name="now"/>.</summary>
    public long FirstRetained(int level, long now)
    {
        long retention = _options.RetentionOf(level);
        return retention == 0 ? long.MinValue : BucketMath.Floor(now - retention, level);
    }

    // ---------------------------------------------------------------- retention

    private void RemoveExpired()
    {
        long now = _now();
        var expired = new List<(SeriesState, int, long, int)>();
        lock (_indexLock)
        {
            foreach (SeriesState s in _series.Values)
            {
                for (int level = 0; level < _levels; level++)
                {
                    long first = FirstRetained(level, now);
                    foreach (var (start, tree) in s.Buckets[level])
                    {
                        if (start < first) expired.Add((s, level, start, tree));
                    }
                }
            }
        }
        if (expired.Count == 0) return;
        _removal.EnterWriteLock();
        try
        {
            lock (_indexLock)
            {
                foreach (var (s, level, start, _) in expired) s.Buckets[level].Remove(start);
                foreach (SeriesState s in _series.Values.Where(s => s.TreeCount == 0).ToList()) _series.Remove(s.Key);
            }
            foreach (var (_, _, _, tree) in expired) _trees.Remove(tree);
        }
        finally
        {
            _removal.ExitWriteLock();
        }
        Interlocked.Add(ref _treesRemovedSinceCompaction, expired.Count);
        _log.LogInformation("Shard {Shard}: retention removed {Trees} expired trees", this, expired.Count);
    }

    // ---------------------------------------------------------------- compaction

    /// <summary>Compacts when trees were removed since the last compaction and the store's names have grown past
    /// <see cref="StorageOptions.CompactionFactor"/> × the names the live trees used then (and by at least
    /// <see cref="StorageOptions.CompactionMinBytes"/>): an O(1) check after each retention pass. Between two
    /// compactions the names of removed trees (JIT addresses, lambdas, pids in names: anything that churns) can
    /// therefore grow to the factor times the live ones, never without bound. A shard whose names do not churn
    /// compacts only each time its live names grow by the factor, so the copies cost O(1) amortised per name.</summary>
    private void CompactIfWorthIt()
    {
        double factor = _options.CompactionFactor;
        if (factor <= 0 || Interlocked.Read(ref _treesRemovedSinceCompaction) == 0 || _broken != null) return;
        long names = _trees.NameBytes;
        if (names <= factor * _liveNameBytes || names - _liveNameBytes < _options.CompactionMinBytes) return;
        Compact();
    }

    /// <summary>Rebuilds the shard's trees in a fresh backend holding only the names live trees use: every tree the
    /// index names is copied (on the writer loop with the apply stage drained, so the index and the trees cannot change meanwhile;
    /// queries go on reading the old trees), then the new backend and the remapped tree ids are swapped in under the
    /// removal lock held exclusively (queries hold it shared while they merge), and the old backend is disposed.
    /// Memory for the copy is reserved against the budget first (the shard briefly holds both); when it does not
    /// fit, the compaction is skipped and logged, and the next retention pass tries again. Nothing durable changes:
    /// WAL records name series and buckets, never tree ids, and the next snapshot saves the new trees with their new
    /// ids, so recovery from the previous snapshot (old ids, old trees file) or the next one is exact either way.</summary>
    private void Compact()
    {
        long started = Stopwatch.GetTimestamp();
        long before = _trees.NativeBytes, namesBefore = _trees.NameBytes;
        try
        {
            _budget.Reserve(before);
        }
        catch (StorageFullException e)
        {
            Interlocked.Increment(ref _compactionsSkipped);
            _log.LogWarning("Shard {Shard}: compaction skipped, the copy of its {Bytes:N0} native bytes does not fit the budget ({Message}); names of removed trees stay until a later pass fits", this, before, e.Message);
            return;
        }
        try
        {
            var places = new List<(Dictionary<long, int> Level, long Start)>();
            var ids = new List<int>();
            lock (_indexLock)
            {
                foreach (SeriesState s in _series.Values)
                {
                    foreach (Dictionary<long, int> level in s.Buckets)
                    {
                        foreach (var (start, tree) in level)
                        {
                            places.Add((level, start));
                            ids.Add(tree);
                        }
                    }
                }
            }
            var newIds = new int[ids.Count];
            ITreeBackend fresh;
            try
            {
                fresh = _trees.CopyTrees(ids, newIds);
            }
            catch (Exception e) when (e is StoreLimitExceededException or OutOfMemoryException or InvalidOperationException)
            {
                _log.LogError(e, "Shard {Shard}: compaction failed while copying its trees; nothing changed", this);
                return;
            }
            ITreeBackend old = _trees;
            _removal.EnterWriteLock();
            try
            {
                lock (_indexLock)
                {
                    for (int i = 0; i < places.Count; i++) places[i].Level[places[i].Start] = newIds[i];
                }
                _trees = fresh;
            }
            finally
            {
                _removal.ExitWriteLock();
            }
            old.Dispose();
            _liveNameBytes = fresh.NameBytes;
            Interlocked.Exchange(ref _treesRemovedSinceCompaction, 0);
            long after = fresh.NativeBytes;
            Interlocked.Increment(ref _compactions);
            Interlocked.Add(ref _compactionReclaimed, Math.Max(0, before - after));
            _log.LogInformation("Shard {Shard}: compacted {Trees} trees in {Ms:F0} ms: names {NamesBefore:N0} → {NamesAfter:N0} bytes, native {Before:N0} → {After:N0} bytes",
                this, ids.Count, Stopwatch.GetElapsedTime(started).TotalMilliseconds, namesBefore, _liveNameBytes, before, after);
        }
        finally
        {
            _budget.Release(before);
        }
    }

    // ---------------------------------------------------------------- queries (callers' threads)

    /// <summary>Merges the trees of matching series at <paramref name="pieces"/> into <paramref name="destination"/>,
    /// adds tree totals per timeline step into <paramref name="samples"/>, and reports matching series with data.</summary>
    public int Query(SeriesSelector selector, List<(int Level, long Start)> pieces, StepPieces stepPieces,
        ProfileTree destination, long[] samples, List<(SeriesKey, SeriesMetadata)> matched, QueryTiming? timing = null)
    {
        WaitForAcknowledged(selector, timing); // read-your-writes: every write acknowledged before this query is in the trees
        long started = Stopwatch.GetTimestamp();
        var trees = new List<int>();
        var stepTrees = new List<(int Step, int Tree)>();
        _removal.EnterReadLock();
        try
        {
            lock (_indexLock)
            {
                foreach (SeriesState s in _series.Values)
                {
                    if (!selector.Matches(s.Key)) continue;
                    int before = trees.Count;
                    foreach (var (level, start) in pieces)
                    {
                        if (s.Buckets[level].TryGetValue(start, out int tree)) trees.Add(tree);
                    }
                    if (trees.Count == before) continue;
                    matched.Add((s.Key, s.Metadata));
                    StepTrees(s, stepPieces, stepTrees);
                }
            }
            if (timing != null) timing.CollectMs += QueryTiming.Lap(ref started);
            _trees.MergeInto(destination, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(trees)); // one merge session for the shard's store
            if (timing != null) timing.UncachedMs += QueryTiming.Lap(ref started);
            AddStepTotals(_trees, stepTrees, samples);
            if (timing != null) timing.CollectMs += QueryTiming.Lap(ref started);
        }
        finally
        {
            _removal.ExitReadLock();
        }
        Interlocked.Add(ref _treesMerged, trees.Count);
        return trees.Count;
    }

    /// <summary>The trees of series <paramref name="s"/> at each timeline step's pieces (index lock held).</summary>
    private static void StepTrees(SeriesState s, StepPieces stepPieces, List<(int Step, int Tree)> into)
    {
        for (int i = 0; i < stepPieces.Length; i++)
        {
            foreach (var (level, start) in stepPieces[i])
            {
                if (s.Buckets[level].TryGetValue(start, out int tree)) into.Add((i, tree));
            }
        }
    }

    /// <summary>Adds each step tree's total to its timeline step, saturating at <see cref="long.MaxValue"/> (removal lock held).</summary>
    private static void AddStepTotals(ITreeBackend trees, List<(int Step, int Tree)> stepTrees, long[] samples)
    {
        foreach (var (step, tree) in stepTrees)
        {
            ulong total = trees.Total(tree);
            long add = total > long.MaxValue ? long.MaxValue : (long)total;
            samples[step] = add > long.MaxValue - samples[step] ? long.MaxValue : samples[step] + add;
        }
    }

    /// <summary>The cached query path (<see cref="Cache.MergeCache"/>): what <see cref="Query"/> finds, without merging.
    /// Adds per timeline step the totals of its trees into <paramref name="samples"/>, reports matching series with data
    /// in <paramref name="matched"/>, and lists in <paramref name="components"/> every tree Query would merge, with the
    /// index of its piece and its stamp (read before anything reads the tree).</summary>
    public void Collect(SeriesSelector selector, List<(int Level, long Start)> pieces, StepPieces stepPieces,
        long[] samples, List<(SeriesKey, SeriesMetadata)> matched, List<Cache.MergeComponent> components, QueryTiming? timing = null)
    {
        WaitForAcknowledged(selector, timing); // read-your-writes, as Query: the cached path must see every acknowledged write too
        long started = Stopwatch.GetTimestamp();
        var stepTrees = new List<(int Step, int Tree)>();
        _removal.EnterReadLock();
        try
        {
            ITreeBackend trees = _trees;
            lock (_indexLock)
            {
                foreach (SeriesState s in _series.Values)
                {
                    if (!selector.Matches(s.Key)) continue;
                    int before = components.Count;
                    for (int p = 0; p < pieces.Count; p++)
                    {
                        var (level, start) = pieces[p];
                        if (s.Buckets[level].TryGetValue(start, out int tree)) components.Add(new Cache.MergeComponent(p, this, trees, tree, trees.Stamp(tree)));
                    }
                    if (components.Count == before) continue;
                    matched.Add((s.Key, s.Metadata));
                    StepTrees(s, stepPieces, stepTrees);
                }
            }
            AddStepTotals(trees, stepTrees, samples);
        }
        finally
        {
            _removal.ExitReadLock();
        }
        if (timing != null) timing.CollectMs += QueryTiming.Lap(ref started);
    }

    /// <summary>Merges trees <see cref="Collect"/> listed into <paramref name="destination"/> (one merge session), or
    /// returns false having merged nothing when one of them is no longer the tree collected: a compaction swapped the
    /// backend, or retention removed the tree (its id possibly reused since). A tree written since it was collected is
    /// merged as it is now (newer than its stamp: a cache holding the merge then sees the stamp change).</summary>
    public bool MergeCollected(ProfileTree destination, ReadOnlySpan<Cache.MergeComponent> components)
    {
        if (components.IsEmpty) return true;
        var ids = new int[components.Length];
        _removal.EnterReadLock();
        try
        {
            ITreeBackend trees = _trees;
            for (int i = 0; i < components.Length; i++)
            {
                if (!IsStillCollected(trees, components[i])) return false;
                ids[i] = components[i].Tree;
            }
            trees.MergeInto(destination, ids);
        }
        finally
        {
            _removal.ExitReadLock();
        }
        Interlocked.Add(ref _treesMerged, components.Length);
        return true;
    }

    /// <summary>Whether <paramref name="c"/> (of this shard) is still the tree <see cref="Collect"/> listed: same backend
    /// (no compaction swapped it), the tree there with the same identity (retention did not remove it, its id not
    /// reused). The caller holds the removal read lock.</summary>
    private bool IsStillCollected(ITreeBackend trees, in Cache.MergeComponent c)
    {
        if (!ReferenceEquals(c.Shard, this)) throw new ArgumentException($"a component of {c.Shard} given to {this}", "components");
        return ReferenceEquals(c.Backend, trees) && trees.Exists(c.Tree) && trees.Stamp(c.Tree).Identity == c.Stamp.Identity;
    }

    /// <summary>What <see cref="TryLendCollected"/> did.</summary>
    internal enum Lending { Lent, NotLendable, Raced }

    /// <summary>
    /// For a truncated sum that reads stored trees in place (<see cref="Cache.MergeCache"/>): takes the removal read lock
    /// and, when every tree of <paramref name="components"/> is still the one collected and the backend has engine
    /// handles (arena), adds them to <paramref name="into"/> and returns <see cref="Lending.Lent"/> with the lock still
    /// held — retention and compaction wait until the caller's <see cref="EndLending"/>, so the trees stay; otherwise
    /// releases it and returns <see cref="Lending.NotLendable"/> (Baseline: merge them instead) or
    /// <see cref="Lending.Raced"/> (a tree was removed or the backend swapped: collect again). Writes may go on (the
    /// sum reads each tree under its own read lock). Callers holding several shards take them in ascending
    /// <see cref="Number"/>: a waiting retention blocks new readers of its shard, so two sums taking two shards in
    /// opposite orders could wait for each other.
    /// </summary>
    internal Lending TryLendCollected(ReadOnlySpan<Cache.MergeComponent> components, List<ProfileTree> into)
    {
        _removal.EnterReadLock();
        int added = 0;
        try
        {
            ITreeBackend trees = _trees;
            foreach (Cache.MergeComponent c in components)
            {
                if (!IsStillCollected(trees, c)) return Lending.Raced;
                if (!trees.TryGetProfileTree(c.Tree, out ProfileTree handle)) return Lending.NotLendable;
                into.Add(handle);
                added++;
            }
            Interlocked.Add(ref _treesMerged, components.Length);
            return Lending.Lent;
        }
        finally
        {
            if (added < components.Length)
            {
                into.RemoveRange(into.Count - added, added);
                _removal.ExitReadLock();
            }
        }
    }

    /// <summary>Ends a <see cref="Lending.Lent"/> <see cref="TryLendCollected"/> (same thread): the trees may be removed again.</summary>
    internal void EndLending() => _removal.ExitReadLock();

    /// <summary>Series matching <paramref name="selector"/> (null: all) with a tree at one of <paramref name="pieces"/>.</summary>
    public void Series(SeriesSelector? selector, List<(int Level, long Start)> pieces, HashSet<SeriesKey> into)
    {
        WaitForAcknowledged(selector); // read-your-writes, as Query
        lock (_indexLock)
        {
            foreach (SeriesState s in _series.Values)
            {
                if (selector != null && !selector.Matches(s.Key)) continue;
                foreach (var (level, start) in pieces)
                {
                    if (s.Buckets[level].ContainsKey(start))
                    {
                        into.Add(s.Key);
                        break;
                    }
                }
            }
        }
    }

    /// <summary>(series, trees, nodes, native bytes, WAL bytes) with every write acknowledged so far applied (waits, as a query).</summary>
    public (long Series, long Trees, long Nodes, long NativeBytes, long WalBytes) Stats()
    {
        WaitForAcknowledged();
        long series;
        lock (_indexLock) series = _series.Count;
        var (trees, nodes, bytes) = ReadTrees(static t => (t.TreeCount, t.NodeCount, t.NativeBytes));
        return (series, trees, nodes, bytes, _wal?.Bytes ?? 0);
    }

    public long NativeBytes => ReadTrees(static t => t.NativeBytes);

    /// <summary>Bytes counted against the budget: native bytes (arena), estimated managed bytes (Baseline).</summary>
    public long BudgetBytes => ReadTrees(static t => t.BudgetBytes);

    /// <summary>Reads figures of the trees from any thread without a lock. A compaction swaps in its new backend and
    /// only then disposes the old one, so a reader that took the old one just before the swap and finds it disposed
    /// reads again and gets the new one.</summary>
    private T ReadTrees<T>(Func<ITreeBackend, T> read)
    {
        for (int attempt = 0; ; attempt++)
        {
            ITreeBackend trees = _trees;
            try
            {
                return read(trees);
            }
            catch (ObjectDisposedException) when (attempt < 3 && !ReferenceEquals(trees, _trees))
            {
                // swapped by a compaction meanwhile: read the new backend
            }
        }
    }

    // ---------------------------------------------------------------- snapshots and recovery

    private void TrySnapshot()
    {
        try
        {
            Snapshot();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or StorageUnavailableException)
        {
            _log.LogError(e, "Shard {Shard}: snapshot failed; the WAL keeps every record, the next snapshot retries", this);
        }
    }

    /// <summary>Saves trees and index as of the last durable record, starts a new WAL segment and deletes what the
    /// snapshot covers. Runs on the writer loop with the apply stage drained (every durable record applied, none handed
    /// over meanwhile), so the snapshot covers exactly the records up to <c>_nextSeq − 1</c>; queries go on.</summary>
    private void Snapshot()
    {
        try
        {
            SnapshotOnce();
        }
        catch (ShardFencedException e)
        {
            MarkFenced(e); // its new segment or its commit was refused: a successor owns the shard
            throw;
        }
    }

    private void SnapshotOnce()
    {
        long seq = _nextSeq - 1;
        if (seq == _snapshotSeq && _prepared.Count == 0) return; // nothing new since the last snapshot
        _wal!.Rotate(_nextSeq);
        if (_prepared.Count > 0)
        {
            // Parts of calls spanning shards still waiting for their commit move to the new segment, so the
            // snapshot can retire the old one.
            var records = new ArrayBufferWriter<byte>();
            long next = _nextSeq;
            foreach (var (txn, part) in _prepared)
            {
                using PooledBuffer payload = WalPayload.Encode(part.Profiles, txn);
                WalFraming.Write(records, WalRecordKind.Prepare, next++, payload.WrittenSpan);
            }
            _wal.Append(records.WrittenSpan);
            _nextSeq = next;
        }
        List<SeriesState> series;
        lock (_indexLock) series = [.. _series.Values];
        _medium.Snapshots.Write(seq, _trees.SaveToFile, treesLength => SeriesIndexFile.Encode(seq, treesLength, _levels, Tenant, series));
        _snapshotSeq = seq;
        _medium.Snapshots.DeleteOthers(seq, olderOnly: true);
        _wal.DeleteBefore(seq + 1);
        _log.LogInformation("Shard {Shard}: snapshot at record {Seq} ({Series} series)", this, seq, series.Count);
    }

    /// <summary>A successor took the shard over (its medium refused a write): no later write can succeed, so the
    /// shard refuses them all without trying; queries go on serving what was acknowledged here.</summary>
    private void MarkFenced(ShardFencedException e)
    {
        if (_broken != null) return;
        _broken = $"shard {this} was taken over by another owner and refuses writes: {e.Message}";
        _log.LogError("{Problem}", _broken);
    }

    /// <summary>Starts a new segment when the medium says the current one is full (append blobs: block limit).</summary>
    private void RotateFullSegment()
    {
        try
        {
            _wal!.Rotate(_nextSeq);
        }
        catch (StorageUnavailableException e)
        {
            if (e is ShardFencedException fenced) MarkFenced(fenced);
            _log.LogError(e, "Shard {Shard}: could not start a new WAL segment; the next write retries or fails", this);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.LogError(e, "Shard {Shard}: could not start a new WAL segment; the next write retries or fails", this);
        }
    }

    private void Recover()
    {
        ISnapshotMedium snapshots = _medium.Snapshots;
        snapshots.CleanTemporaries();
        long latest = snapshots.Latest();
        if (latest > 0)
        {
            string index = snapshots.Name(latest, "index"), treesPath = snapshots.Name(latest, "trees");
            long? actualLength = snapshots.TreesLength(latest);
            if (actualLength == null) throw new InvalidDataException($"snapshot {index} has no trees file {treesPath}");
            var (seq, treesLength, tenant, series) = SeriesIndexFile.Read(snapshots.ReadIndex(latest), index, _levels);
            if (seq != latest || tenant != Tenant)
                throw new InvalidDataException($"series index {index} is corrupt at byte offset 8: it says record {seq} of tenant '{tenant}', its name and directory say {latest} of '{Tenant}'");
            if (actualLength != treesLength)
                throw new InvalidDataException($"snapshot {treesPath} is corrupt at byte offset {Math.Min(treesLength, actualLength.Value)}: it has {actualLength} bytes, its index says {treesLength}");
            _trees.Dispose();
            _trees = snapshots.LoadTrees(latest, path => TreeBackends.LoadFile(_options, path));
            var used = new HashSet<int>();
            foreach (SeriesState s in series)
            {
                foreach (Dictionary<long, int> level in s.Buckets)
                {
                    foreach (int tree in level.Values)
                    {
                        if (!used.Add(tree) || !_trees.Exists(tree))
                            throw new InvalidDataException($"series index {index} does not match {treesPath}: tree {tree} of {s.Key} is missing or used twice");
                    }
                }
                _series.Add(s.Key, s);
            }
            if (used.Count != _trees.TreeCount)
                throw new InvalidDataException($"series index {index} does not match {treesPath}: {used.Count} trees indexed, {_trees.TreeCount} saved");
            _snapshotSeq = latest;
        }
        // Older snapshots, and a trees file whose index never made it (crash between the two renames), go.
        snapshots.DeleteOthers(latest, olderOnly: false);

        long expected = -1;
        List<WalSegment> segments = _medium.Wal.Segments();
        int applied = 0;
        for (int i = 0; i < segments.Count; i++)
        {
            var (firstSeq, path, _) = segments[i];
            bool last = i == segments.Count - 1;
            if (expected < 0) expected = firstSeq;
            if (firstSeq != expected)
                throw new InvalidDataException($"write-ahead log {path} is corrupt at byte offset 0: it starts at record {firstSeq}, record {expected} was expected (a segment is missing)");
            byte[] bytes = _medium.Wal.Read(segments[i]);
            long valid = WalLog.ReadSegment(bytes, path, last, record =>
            {
                if (record.Seq != expected)
                    throw new InvalidDataException($"write-ahead log {path} is corrupt at byte offset {record.Offset}: record {record.Seq} where record {expected} was expected");
                expected++;
                if (record.Seq <= _snapshotSeq) return;
                try
                {
                    switch (record.Kind)
                    {
                        case WalRecordKind.Ingest:
                        case WalRecordKind.Prepare:
                            var (txn, profiles) = WalPayload.Decode(record.Payload);
                            try
                            {
                                ReplayRecord(record.Kind == WalRecordKind.Ingest ? WorkKind.Ingest : WorkKind.Prepare, profiles, txn);
                            }
                            finally
                            {
                                foreach (IngestProfile p in profiles) p.Stacks.Dispose();
                            }
                            break;
                        default:
                            ReplayRecord(WorkKind.Commit, null, WalPayload.DecodeTxn(record.Payload));
                            break;
                    }
                }
                catch (Exception e) when (e is InvalidDataException or OverflowException or StoreLimitExceededException)
                {
                    throw new InvalidDataException($"write-ahead log {path}: record {record.Seq} at byte offset {record.Offset} cannot be applied: {e.Message}", e);
                }
                applied++;
            });
            long length = bytes.Length;
            if (valid < length)
            {
                _log.LogWarning("Shard {Shard}: dropped the torn tail of {Path} ({Bytes} bytes from byte offset {Offset}): it was never acknowledged", this, path, length - valid, valid);
                _medium.Wal.CutTail(segments[i], valid);
            }
        }
        if (segments.Count == 0)
        {
            _nextSeq = _snapshotSeq + 1;
        }
        else
        {
            if (segments[0].FirstSeq > _snapshotSeq + 1)
                throw new InvalidDataException($"write-ahead log {segments[0].Name} is corrupt at byte offset 0: it starts at record {segments[0].FirstSeq}, but the snapshot covers only up to record {_snapshotSeq} (records are missing)");
            if (expected < _snapshotSeq + 1)
                throw new InvalidDataException($"write-ahead log {segments[^1].Name} ends at record {expected - 1}, before the snapshot's record {_snapshotSeq}");
            _nextSeq = expected;
        }
        if (_prepared.Count > 0)
        {
            // Parts of calls spanning shards whose commit never came: those calls were never acknowledged.
            _log.LogWarning("Shard {Shard}: dropped {Count} prepared parts without commit (calls that were never acknowledged)", this, _prepared.Count);
            foreach (PreparedPart part in _prepared.Values) part.Dispose();
            _prepared.Clear();
            _unapplied.Clear();
        }
        _log.LogInformation("Shard {Shard}: recovered snapshot at record {Snapshot}, replayed {Applied} records", this, _snapshotSeq, applied);
    }

    public void Dispose()
    {
        _work.Writer.TryComplete();
        // The apply stage drops what it has not applied (the WAL holds it: the next open replays it) and its thread
        // ends before the trees go.
        _apply.Complete(discard: true);
        _apply.Join();
        _wal?.Dispose();
        _medium.Dispose();
        _trees.Dispose();
        _removal.Dispose();
    }

    // ---------------------------------------------------------------- types

    internal enum WorkKind { Ingest, Prepare, Commit, Abort, Snapshot, Retention, Stop, Compact }

    private sealed class Work(WorkKind kind, List<IngestProfile>? profiles, long txn, PooledBuffer? payload)
    {
        private PooledBuffer? _payload = payload;

        public WorkKind Kind { get; } = kind;
        public List<IngestProfile>? Profiles { get; } = profiles;
        public long Txn { get; } = txn;
        /// <summary>The encoded WAL payload (Ingest, Prepare), pooled: returned when the work completes.</summary>
        public PooledBuffer? Payload => _payload;
        public int PayloadLength => _payload?.Length ?? 8;
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        // The payload goes back to the pool before the caller can see the outcome: once Done completes, the
        // caller may dispose its batches, and nothing here reads the work again.
        public void Succeed()
        {
            Interlocked.Exchange(ref _payload, null)?.Dispose();
            Done.TrySetResult();
        }

        public void Fail(Exception e)
        {
            Interlocked.Exchange(ref _payload, null)?.Dispose();
            Done.TrySetException(e);
        }
    }

    /// <summary>A prepared part of a call spanning shards: owns its copies of the batches until commit (then the
    /// apply stage owns them) or abort; <paramref name="Reserved"/> are its totals counted as unapplied.</summary>
    private sealed record PreparedPart(List<IngestProfile> Profiles, List<(Target, ulong)> Reserved) : IDisposable
    {
        public void Dispose()
        {
            foreach (IngestProfile p in Profiles) p.Stacks.Dispose();
        }
    }

    /// <summary>A write of the group being written: its budget reservation and the totals it added to the unapplied ones.</summary>
    private readonly record struct Admitted(Work Work, long Reserved, List<(Target, ulong)> Targets);

    /// <summary>A durable, acknowledged record waiting for the apply stage, owning what applying it needs: its own copies
    /// of the stacks, its budget reservation and its unapplied totals, all given back once by <see cref="Release"/>.</summary>
    private sealed class DurableRecord(List<IngestProfile> profiles, long reserved, List<(Target, ulong)> targets)
    {
        private int _released;

        public List<IngestProfile> Profiles => profiles;

        public void Release(Shard shard)
        {
            if (Interlocked.Exchange(ref _released, 1) != 0) return;
            shard._budget.Release(reserved);
            shard.Unreserve(targets);
            foreach (IngestProfile p in profiles) p.Stacks.Dispose();
        }
    }

    private readonly record struct Target(SeriesKey Series, int Level, long Start);
}
