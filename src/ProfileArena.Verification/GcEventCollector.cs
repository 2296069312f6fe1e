using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

namespace ProfileArena.Verification;

/// <summary>
/// Turns the runtime provider's GC events into <see cref="GcRecord"/>s: GCStart gives number, generation,
/// reason and type; GCEnd the end; the pause is the execution-engine suspension the GC ran in, from
/// GCSuspendEEBegin to GCRestartEEEnd. A suspension is charged to the first GC that starts inside it;
/// one with no GC start while a background GC runs is charged to that background GC (its final pause);
/// others (suspensions for something other than a GC) are counted in <see cref="OtherSuspensionMs"/>.
/// </summary>
/// <remarks>Handlers run on the event source's processing thread; read results after Process() returns,
/// or through <see cref="Snapshot"/>, which locks.</remarks>
public sealed class GcEventCollector
{
    private readonly Lock _lock = new();
    private readonly List<GcRecord> _gcs = [];
    private readonly Dictionary<int, GcRecord> _byNumber = [];
    private double _suspendStartMs = double.NaN;
    private double _suspendedAtMs = double.NaN; // SuspendEE end of the current suspension: all threads stopped
    private double _restartAtMs = double.NaN; // RestartEE start of the current suspension
    private double _lastMarkMs = double.NaN; // the previous mark phase's end in the running blocking GC
    private GcRecord? _chargedInThisSuspension;
    private GcRecord? _runningBackground;
    private GcRecord? _last;

    /// <summary>Suspensions in which no GC ran (e.g. for the debugger or a rejit), summed.</summary>
    public double OtherSuspensionMs { get; private set; }

    /// <summary>Events of the GC keyword that were parsed (all kinds).</summary>
    public long EventCount { get; private set; }

    public void Attach(TraceEventDispatcher source)
    {
        ArgumentNullException.ThrowIfNull(source);
        ClrTraceEventParser clr = source.Clr;
        clr.GCSuspendEEStart += OnSuspendStart;
        clr.GCSuspendEEStop += OnSuspendStop;
        clr.GCStart += OnStart;
        clr.GCStop += OnStop;
        clr.GCRestartEEStart += OnRestartStart;
        clr.GCRestartEEStop += OnRestartStop;
        clr.GCMarkWithType += OnMark;
        clr.GCHeapStats += OnHeapStats;
    }

    /// <summary>A copy of the GCs seen so far, in start order.</summary>
    public IReadOnlyList<GcRecord> Snapshot()
    {
        lock (_lock)
            return [.. _gcs];
    }

    /// <summary>Marks the GC with this number as a heap-snapshot GC (see <see cref="GcRecord.Snapshot"/>).</summary>
    public void MarkSnapshot(int number)
    {
        lock (_lock)
        {
            if (_byNumber.TryGetValue(number, out GcRecord? gc))
                gc.Snapshot = true;
            else
                _pendingSnapshotNumbers.Add(number);
        }
    }

    private readonly HashSet<int> _pendingSnapshotNumbers = [];

    /// <summary>Parses a recorded .nettrace file.</summary>
    public static GcEventCollector FromFile(string nettracePath)
    {
        var collector = new GcEventCollector();
        using var source = new Microsoft.Diagnostics.Tracing.EventPipeEventSource(nettracePath);
        collector.Attach(source);
        source.Process();
        return collector;
    }

    private void OnSuspendStart(GCSuspendEETraceData data)
    {
        lock (_lock)
        {
            EventCount++;
            _suspendStartMs = data.TimeStampRelativeMSec;
            _suspendedAtMs = double.NaN;
            _restartAtMs = double.NaN;
            _chargedInThisSuspension = null;
        }
    }

    private void OnSuspendStop(GCNoUserDataTraceData data)
    {
        lock (_lock)
        {
            EventCount++;
            if (!double.IsNaN(_suspendStartMs) && double.IsNaN(_suspendedAtMs))
                _suspendedAtMs = data.TimeStampRelativeMSec;
        }
    }

    private void OnStart(GCStartTraceData data)
    {
        lock (_lock)
        {
            EventCount++;
            var gc = new GcRecord
            {
                Number = data.Count,
                Generation = data.Depth,
                Reason = data.Reason.ToString(),
                Type = data.Type.ToString(),
                StartMs = data.TimeStampRelativeMSec,
                Snapshot = _pendingSnapshotNumbers.Remove(data.Count),
            };
            _gcs.Add(gc);
            _byNumber[gc.Number] = gc;
            _last = gc;
            if (data.Type == GCType.BackgroundGC)
                _runningBackground = gc;
            _lastMarkMs = data.Type == GCType.NonConcurrentGC ? data.TimeStampRelativeMSec : double.NaN;
            if (!double.IsNaN(_suspendStartMs))
                _chargedInThisSuspension ??= gc;
        }
    }

    private void OnStop(GCEndTraceData data)
    {
        lock (_lock)
        {
            EventCount++;
            if (_byNumber.TryGetValue(data.Count, out GcRecord? gc))
            {
                gc.EndMs = data.TimeStampRelativeMSec;
                if (ReferenceEquals(gc, _runningBackground))
                    _runningBackground = null;
            }
        }
    }

    private void OnMark(GCMarkWithTypeTraceData data)
    {
        lock (_lock)
        {
            EventCount++;
            if (_last is null || double.IsNaN(_lastMarkMs) || !double.IsNaN(_last.EndMs)) return; // only a running blocking GC's marks
            _last.MarkPhases.Add((data.Type, data.TimeStampRelativeMSec - _lastMarkMs, data.Promoted));
            _lastMarkMs = data.TimeStampRelativeMSec;
        }
    }

    private void OnRestartStart(GCNoUserDataTraceData data)
    {
        lock (_lock)
        {
            EventCount++;
            if (!double.IsNaN(_suspendStartMs) && double.IsNaN(_restartAtMs))
                _restartAtMs = data.TimeStampRelativeMSec;
        }
    }

    private void OnRestartStop(GCNoUserDataTraceData data)
    {
        lock (_lock)
        {
            EventCount++;
            if (double.IsNaN(_suspendStartMs))
                return; // the session started inside a suspension: its start was not seen
            double pause = data.TimeStampRelativeMSec - _suspendStartMs;
            GcRecord? target = _chargedInThisSuspension ?? _runningBackground;
            if (target is not null)
            {
                target.PauseMs += pause;
                target.LongestSuspensionMs = Math.Max(target.LongestSuspensionMs, pause);
                target.Suspensions++;
                if (!double.IsNaN(_suspendedAtMs))
                    target.SuspendingMs += _suspendedAtMs - _suspendStartMs;
                if (!double.IsNaN(_restartAtMs))
                    target.RestartingMs += data.TimeStampRelativeMSec - _restartAtMs;
            }
            else
            {
                OtherSuspensionMs += pause;
            }
            _suspendStartMs = double.NaN;
            _suspendedAtMs = double.NaN;
            _restartAtMs = double.NaN;
            _chargedInThisSuspension = null;
        }
    }

    private void OnHeapStats(GCHeapStatsTraceData data)
    {
        lock (_lock)
        {
            EventCount++;
            if (_last is not null)
                _last.HeapBytesAfter = data.TotalHeapSize;
        }
    }
}
