using System.Diagnostics;
using System.Diagnostics.Tracing;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

namespace ProfileArena.Verification;

/// <summary>Live managed objects of one heap snapshot, per type.</summary>
public sealed class HeapSnapshot
{
    public long LiveObjects { get; init; }
    public long LiveBytes { get; init; }
    /// <summary>Number of the induced GC that walked the heap.</summary>
    public int GcNumber { get; init; }
    public double Seconds { get; init; }
    /// <summary>Events the session reported lost; non-zero means the counts are too low.</summary>
    public long EventsLost { get; init; }
    /// <summary>Per type name: live objects and their bytes.</summary>
    public Dictionary<string, TypeCount> Types { get; init; } = [];

    public IEnumerable<KeyValuePair<string, TypeCount>> TopByCount(int n) =>
        Types.OrderByDescending(t => t.Value.Count).ThenBy(t => t.Key, StringComparer.Ordinal).Take(n);
}

public sealed record TypeCount(long Count, long Bytes);

/// <summary>
/// Takes a heap snapshot over EventPipe the way dotnet-gcdump does: a session on the runtime provider
/// with the GCHeapSnapshot keywords (GC | GCHeapCollect | GCHeapDump | Type | TypeDiagnostic) at
/// Verbose level makes the runtime induce a blocking gen2 GC and, while the world is stopped, walk
/// the objects that GC found live, sending them as GCBulkNode events (address, size, type id) and
/// their types as GCBulkType events. The dump is the first non-background gen2 GC after the session
/// starts and is complete at its GCEnd; edges and roots are not needed for counting and are ignored.
/// </summary>
public static class HeapSnapshotter
{
    private const string RuntimeProvider = "Microsoft-Windows-DotNETRuntime";

    /// <summary>Takes one snapshot of the process behind <paramref name="client"/>.</summary>
    /// <param name="client">A client connected to the observed runtime.</param>
    /// <param name="typeNames">Type id → name, kept by the caller across snapshots of one process (the
    /// runtime sends a type's name once per session that first meets it).</param>
    /// <param name="idleTimeout">Fails when no event arrives for this long.</param>
    /// <param name="onProgress">Called now and then with the objects counted so far.</param>
    /// <param name="ct">Stops the snapshot (the session is stopped, then this throws).</param>
    public static HeapSnapshot Take(DiagnosticsClient client, Dictionary<ulong, string> typeNames, TimeSpan idleTimeout,
        Action<long>? onProgress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(typeNames);
        var clock = Stopwatch.StartNew();
        var provider = new EventPipeProvider(RuntimeProvider, EventLevel.Verbose, (long)ClrTraceEventParser.Keywords.GCHeapSnapshot);
        using EventPipeSession session = client.StartEventPipeSession([provider], requestRundown: false, circularBufferMB: 3072);
        using var source = new EventPipeEventSource(session.EventStream);

        int gcNumber = -1;
        bool complete = false;
        long objects = 0, bytes = 0;
        long lastEventTicks = clock.ElapsedTicks;
        long lastReport = 0;
        var byType = new Dictionary<ulong, (long Count, long Bytes)>();
        using var done = new ManualResetEventSlim();

        source.Clr.GCStart += data =>
        {
            Volatile.Write(ref lastEventTicks, clock.ElapsedTicks);
            if (gcNumber < 0 && data.Depth == 2 && data.Type != GCType.BackgroundGC)
                gcNumber = data.Count;
        };
        source.Clr.GCStop += data =>
        {
            Volatile.Write(ref lastEventTicks, clock.ElapsedTicks);
            if (gcNumber >= 0 && data.Count == gcNumber)
            {
                complete = true;
                done.Set();
            }
        };
        source.Clr.GCBulkNode += data =>
        {
            Volatile.Write(ref lastEventTicks, clock.ElapsedTicks);
            if (gcNumber < 0)
                return;
            for (int i = 0; i < data.Count; i++)
            {
                GCBulkNodeValues node = data.Values(i);
                objects++;
                bytes += (long)node.Size;
                ref (long Count, long Bytes) slot = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(byType, node.TypeID, out _);
                slot.Count++;
                slot.Bytes += (long)node.Size;
            }
            if (onProgress is not null && objects - lastReport >= 2_000_000)
            {
                lastReport = objects;
                onProgress(objects);
            }
        };
        source.Clr.TypeBulkType += data =>
        {
            Volatile.Write(ref lastEventTicks, clock.ElapsedTicks);
            for (int i = 0; i < data.Count; i++)
            {
                GCBulkTypeValues type = data.Values(i);
                if (!string.IsNullOrEmpty(type.TypeName))
                    typeNames[type.TypeID] = type.TypeName;
            }
        };

        Exception? readerError = null;
        var reader = new Thread(() =>
        {
            try { source.Process(); }
            catch (Exception e) { readerError = e; }
            finally { done.Set(); }
        }) { IsBackground = true, Name = "heap-snapshot reader" };
        reader.Start();

        try
        {
            while (!done.Wait(200, ct))
            {
                double idle = (clock.ElapsedTicks - Volatile.Read(ref lastEventTicks)) / (double)Stopwatch.Frequency;
                if (idle > idleTimeout.TotalSeconds)
                    throw new TimeoutException($"heap snapshot: no event from the runtime for {idleTimeout.TotalSeconds:0} s (gc {(gcNumber < 0 ? "not started" : "#" + gcNumber)}, {objects:N0} objects so far)");
            }
        }
        finally
        {
            // Stopping the session flushes what the runtime still buffers; the reader then drains it and ends.
            try { session.Stop(); } catch (Exception) when (ct.IsCancellationRequested || readerError is not null) { }
            if (!reader.Join(TimeSpan.FromSeconds(120)))
                source.StopProcessing();
        }
        if (readerError is not null)
            throw new InvalidOperationException($"heap snapshot: reading the event stream failed: {readerError.Message}", readerError);
        if (!complete)
            throw new InvalidOperationException($"heap snapshot: the event stream ended before the dump GC {(gcNumber < 0 ? "started" : "#" + gcNumber + " ended")} (did the process exit?)");

        var types = new Dictionary<string, TypeCount>(StringComparer.Ordinal);
        foreach ((ulong id, (long count, long size)) in byType)
        {
            string name = typeNames.TryGetValue(id, out string? n) ? n : $"type#0x{id:x}";
            types[name] = types.TryGetValue(name, out TypeCount? prior) ? new TypeCount(prior.Count + count, prior.Bytes + size) : new TypeCount(count, size);
        }
        return new HeapSnapshot
        {
            LiveObjects = objects,
            LiveBytes = bytes,
            GcNumber = gcNumber,
            Seconds = clock.Elapsed.TotalSeconds,
            EventsLost = source.EventsLost,
            Types = types,
        };
    }
}
