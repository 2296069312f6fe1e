using System.Diagnostics.Tracing;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;
using ProfileArena.Verification;

namespace ProfileArena.ServerLoad;

/// <summary>
/// Watches the server's GCs from outside over EventPipe, the way ProfileArena.Verification does: a session on
/// the runtime provider with the GC keyword, parsed by <see cref="GcEventCollector"/> (pause = the suspension a
/// GC ran in, heap after each GC from GCHeapStats); at the end one heap snapshot (<see cref="HeapSnapshotter"/>:
/// an induced gen2 GC that walks the live objects). Attached by process id once the server is ready.
/// </summary>
public sealed class GcObserver : IDisposable
{
    private readonly DiagnosticsClient _client;
    private readonly EventPipeSession _session;
    private readonly Thread _reader;
    private EventPipeEventSource? _source;
    private Exception? _error;

    /// <param name="pid">The server process.</param>
    /// <param name="allocationTicks">Also collect the runtime's allocation ticks (verbose GC events, one per ≈100 KB
    /// allocated) to show which types go to the large object heap: they start the background gen2 GCs.</param>
    public GcObserver(int pid, bool allocationTicks)
    {
        _client = new DiagnosticsClient(pid);
        _session = _client.StartEventPipeSession(
            [new EventPipeProvider("Microsoft-Windows-DotNETRuntime", allocationTicks ? EventLevel.Verbose : EventLevel.Informational, (long)ClrTraceEventParser.Keywords.GC)],
            requestRundown: false, circularBufferMB: 256);
        _reader = new Thread(() =>
        {
            try
            {
                _source = new EventPipeEventSource(_session.EventStream);
                Collector.Attach(_source);
                if (allocationTicks) _source.Clr.GCAllocationTick += OnAllocationTick;
                _source.Process();
            }
            catch (Exception e)
            {
                _error = e;
            }
        }) { IsBackground = true, Name = "gc session" };
        _reader.Start();
    }

    public GcEventCollector Collector { get; } = new();

    private readonly Lock _ticksLock = new();
    private readonly Dictionary<string, (long Ticks, long Bytes)> _largeAllocations = [], _smallAllocations = [];

    /// <summary>Large-object-heap allocation ticks by type name: (ticks, bytes the ticks stand for), most bytes first.</summary>
    public List<KeyValuePair<string, (long Ticks, long Bytes)>> LargeAllocations()
    {
        lock (_ticksLock) return [.. _largeAllocations.OrderByDescending(kv => kv.Value.Bytes)];
    }

    /// <summary>Small-object-heap allocation ticks by type name (the garbage that starts gen0 collections), most bytes first.</summary>
    public List<KeyValuePair<string, (long Ticks, long Bytes)>> SmallAllocations()
    {
        lock (_ticksLock) return [.. _smallAllocations.OrderByDescending(kv => kv.Value.Bytes)];
    }

    private void OnAllocationTick(Microsoft.Diagnostics.Tracing.Parsers.Clr.GCAllocationTickTraceData data)
    {
        var table = data.AllocationKind switch
        {
            Microsoft.Diagnostics.Tracing.Parsers.Clr.GCAllocationKind.Large => _largeAllocations,
            Microsoft.Diagnostics.Tracing.Parsers.Clr.GCAllocationKind.Small => _smallAllocations,
            _ => null,
        };
        if (table is null) return;
        string type = string.IsNullOrEmpty(data.TypeName) ? "?" : data.TypeName;
        lock (_ticksLock)
        {
            var (ticks, bytes) = table.GetValueOrDefault(type);
            table[type] = (ticks + 1, bytes + data.AllocationAmount64);
        }
    }

    /// <summary>Totals of the GCs seen so far (snapshot GCs excluded).</summary>
    public GcTotals Totals() => GcTotals.Of(Collector.Snapshot().Where(g => !g.Snapshot));

    /// <summary>Managed heap after the latest GC (GCHeapStats), 0 before any.</summary>
    public long LastHeapBytes() => Collector.Snapshot().LastOrDefault(g => g.HeapBytesAfter > 0)?.HeapBytesAfter ?? 0;

    public long EventsLost => _source?.EventsLost ?? 0;

    /// <summary>A heap snapshot now; its GC is marked so that it does not count as the server's own.</summary>
    public HeapSnapshot TakeHeapSnapshot(TimeSpan idleTimeout, TextWriter log)
    {
        var snapshot = HeapSnapshotter.Take(_client, [], idleTimeout, n => log.WriteLine($"    ... {n:N0} objects walked"), CancellationToken.None);
        Collector.MarkSnapshot(snapshot.GcNumber);
        return snapshot;
    }

    public void Dispose()
    {
        try { _session.Stop(); } catch (Exception) { /* the process may be gone */ }
        if (!_reader.Join(TimeSpan.FromSeconds(20))) _source?.StopProcessing();
        _session.Dispose();
        if (_error != null && _error is not (EndOfStreamException or ObjectDisposedException) && !_error.Message.Contains("end of stream", StringComparison.OrdinalIgnoreCase)) Console.Error.WriteLine($"gc session: {_error.Message}");
    }
}
