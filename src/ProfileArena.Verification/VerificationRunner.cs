using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Tracing;
using System.Globalization;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;
using ProfileArena.Workloads;

namespace ProfileArena.Verification;

/// <summary>A verification run failed; <see cref="Phase"/> names the step (start, connect, build, snapshot, finish).</summary>
public sealed class VerificationException(string phase, string message, Exception? inner = null)
    : Exception($"{phase}: {message}", inner)
{
    public string Phase { get; } = phase;
}

/// <summary>
/// Observes one workload child from outside: starts <c>ProfileArena.GcWorkload</c> suspended on a
/// reversed diagnostic port (<c>DOTNET_DiagnosticPorts</c>, suspend mode: the runtime connects to us and
/// waits before running any managed code), opens the GC event session, resumes the runtime, then at
/// every checkpoint the child reports it takes a heap snapshot (<see cref="HeapSnapshotter"/>) while the
/// child waits, and lets it go on. Nothing of the workload can be missed: the session exists before the
/// child's Main runs.
/// </summary>
public sealed class VerificationRunner
{
    private const string RuntimeProvider = "Microsoft-Windows-DotNETRuntime";

    /// <summary>Progress and child stderr go here (the CLI passes stderr).</summary>
    public TextWriter Log { get; init; } = TextWriter.Null;
    /// <summary>How long the child may take to start and connect to the diagnostic port.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>How long the child may stay silent while building (it reports after every tree).</summary>
    public TimeSpan BuildIdleTimeout { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>How long a heap snapshot may go without any event.</summary>
    public TimeSpan SnapshotIdleTimeout { get; init; } = TimeSpan.FromMinutes(2);
    /// <summary>Snapshots taken and discarded before the empty-store one (see Run).</summary>
    public int SettlingSnapshots { get; init; } = 3;
    /// <summary>If set, the GC session's raw stream is also written to this .nettrace file.</summary>
    public string? TraceOutputPath { get; init; }
    /// <summary>The workload assembly; by default ProfileArena.GcWorkload.dll beside this library.</summary>
    public string WorkloadPath { get; init; } = Path.Combine(AppContext.BaseDirectory, "ProfileArena.GcWorkload.dll");

    public EngineResult Run(WorkloadSpec spec, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        string engine = WorkloadEngines.Name(spec.Engine);
        string tag = $"[{engine}]";
        if (!File.Exists(WorkloadPath))
            throw new VerificationException("start", $"workload not found at {WorkloadPath}");

        var wall = Stopwatch.StartNew();
        string port = Path.Combine(Path.GetTempPath(), $"pa-verify-{Environment.ProcessId}-{Guid.NewGuid():N}".Substring(0, 40) + ".sock");
        Process? child = null;
        DiagnosticsClientConnector? connector = null;
        EventPipeSession? gcSession = null;
        Thread? gcReader = null;
        Exception? gcReaderError = null;
        EventPipeEventSource? gcSource = null;
        var collector = new GcEventCollector();
        var stderrTail = new ConcurrentQueue<string>();
        var lines = new BlockingCollection<string?>();
        string phase = "start";
        try
        {
            // 1. Listen, then start the child suspended: its runtime connects here and waits for ResumeRuntime.
            using var connectCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            connectCts.CancelAfter(ConnectTimeout);
            Task<DiagnosticsClientConnector> connecting = DiagnosticsClientConnector.FromDiagnosticPort(port + ",listen", connectCts.Token);

            child = StartChild(spec, port);
            Log.WriteLine($"{tag} child {child.Id} started suspended: {spec.Trees} trees × {spec.Width} × {spec.Depth}, checkpoints {string.Join(',', spec.EffectiveCheckpoints)}");
            StartPump(child.StandardOutput, line => lines.Add(line, CancellationToken.None), () => lines.CompleteAdding(), "stdout");
            StartPump(child.StandardError, line =>
            {
                Log.WriteLine($"{tag} child: {line}");
                stderrTail.Enqueue(line);
                while (stderrTail.Count > 20)
                    stderrTail.TryDequeue(out _);
            }, () => { }, "stderr");

            phase = "connect";
            Task exited = child.WaitForExitAsync(CancellationToken.None);
            try
            {
                Task.WaitAny([connecting, exited], ct);
            }
            catch (OperationCanceledException)
            {
                throw;
            }
            if (!connecting.IsCompleted && exited.IsCompleted)
                throw new VerificationException(phase, $"the child exited with code {child.ExitCode} before connecting to the diagnostic port{Tail(stderrTail)}");
            try
            {
                connector = connecting.GetAwaiter().GetResult();
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                connector = null;
            }
            ct.ThrowIfCancellationRequested();
            if (connector is null)
                throw new VerificationException(phase, $"the child did not connect to the diagnostic port within {ConnectTimeout.TotalSeconds:0} s{Tail(stderrTail)}");
            DiagnosticsClient client = connector.Instance;

            // 2. The GC session, opened while the runtime is still suspended, then resume.
            var gcProvider = new EventPipeProvider(RuntimeProvider, EventLevel.Informational, (long)ClrTraceEventParser.Keywords.GC);
            gcSession = client.StartEventPipeSession([gcProvider], requestRundown: false, circularBufferMB: 256);
            Stream stream = gcSession.EventStream;
            if (TraceOutputPath is not null)
                stream = new TeeStream(stream, File.Create(TraceOutputPath));
            Stream gcStream = stream;
            gcReader = new Thread(() =>
            {
                try
                {
                    gcSource = new EventPipeEventSource(gcStream);
                    collector.Attach(gcSource);
                    gcSource.Process();
                }
                catch (Exception e)
                {
                    gcReaderError = e;
                }
                finally
                {
                    gcStream.Dispose();
                }
            }) { IsBackground = true, Name = "gc-session reader" };
            gcReader.Start();
            client.ResumeRuntime();
            Log.WriteLine($"{tag} connected; GC session open; runtime resumed");

            // 3. Checkpoints.
            phase = "build";
            var typeNames = new Dictionary<ulong, string>();
            var checkpoints = new List<(CheckpointResult Raw, HeapSnapshot Snapshot)>();
            var snapshotGcs = new HashSet<int>();
            var progress = new ProgressReporter(Log, $"{tag} build", spec.Trees, ProgressUnit.Trees);
            bool finished = false;
            while (!finished)
            {
                string? line = NextLine(lines, BuildIdleTimeout, ct);
                if (line is null)
                {
                    child.WaitForExit(5000);
                    string code = child.HasExited ? $"code {child.ExitCode}" : "no exit code";
                    throw new VerificationException(phase, $"the child ended its output early ({code}) after {checkpoints.Count} of {spec.EffectiveCheckpoints.Count} checkpoints{Tail(stderrTail)}");
                }
                string[] parts = line.Split(' ');
                switch (parts[0])
                {
                    case "progress" when parts.Length == 3:
                        progress.Report(int.Parse(parts[1], CultureInfo.InvariantCulture));
                        break;
                    case "checkpoint" when parts.Length == 5:
                    {
                        int trees = int.Parse(parts[1], CultureInfo.InvariantCulture);
                        long nodes = long.Parse(parts[2], CultureInfo.InvariantCulture);
                        phase = $"snapshot at {trees} trees";
                        progress.Pause(); // the rate counts building time, not snapshots
                        Log.WriteLine($"{tag} checkpoint: {trees} trees, {nodes:N0} nodes; heap snapshot...");
                        if (checkpoints.Count == 0)
                        {
                            // The first session a process sees makes it build EventSource state (manifests,
                            // reflection caches) that a later collection frees. A settling snapshot first puts
                            // the empty-store snapshot in the same state as every later one.
                            // Finalizable helpers (e.g. DynamicMethod's DestroyScout) need a few collections
                            // to go; the heap is small here, so settling costs milliseconds.
                            for (int settling = 0; settling < SettlingSnapshots; settling++)
                            {
                                HeapSnapshot settle = HeapSnapshotter.Take(client, typeNames, SnapshotIdleTimeout, null, ct);
                                snapshotGcs.Add(settle.GcNumber);
                                collector.MarkSnapshot(settle.GcNumber);
                            }
                        }
                        HeapSnapshot snap = HeapSnapshotter.Take(client, typeNames, SnapshotIdleTimeout,
                            n => Log.WriteLine($"{tag}   ... {n:N0} objects walked"), ct);
                        snapshotGcs.Add(snap.GcNumber);
                        collector.MarkSnapshot(snap.GcNumber);
                        Log.WriteLine($"{tag}   {snap.LiveObjects:N0} live objects, {snap.LiveBytes:N0} bytes (gc #{snap.GcNumber}, {snap.Seconds:0.0} s{(snap.EventsLost > 0 ? $", {snap.EventsLost} EVENTS LOST" : "")})");
                        checkpoints.Add((new CheckpointResult
                        {
                            Trees = trees,
                            Nodes = nodes,
                            NativeBytes = long.Parse(parts[3], CultureInfo.InvariantCulture),
                            TotalsSum = ulong.Parse(parts[4], CultureInfo.InvariantCulture),
                        }, snap));
                        phase = "build";
                        child.StandardInput.WriteLine("next");
                        child.StandardInput.Flush();
                        progress.Resume();
                        break;
                    }
                    case "ready":
                        child.StandardInput.WriteLine("next");
                        child.StandardInput.Flush();
                        break;
                    case "done":
                        progress.Done();
                        finished = true;
                        break;
                    default:
                        throw new VerificationException(phase, $"unexpected line from the child: '{line}'");
                }
            }

            // 4. Finish: the child exits, which ends the GC stream; drain it.
            phase = "finish";
            if (!child.WaitForExit(TimeSpan.FromSeconds(30)))
                throw new VerificationException(phase, "the child did not exit within 30 s after its last checkpoint");
            try { gcSession.Stop(); } catch (Exception) { /* the runtime is gone: the stream ends by itself */ }
            if (!gcReader.Join(TimeSpan.FromSeconds(60)))
            {
                gcSource?.StopProcessing();
                throw new VerificationException(phase, "the GC event stream did not end within 60 s of the child's exit");
            }
            if (gcReaderError is not null)
                throw new VerificationException(phase, $"reading the GC event stream failed: {gcReaderError.Message}", gcReaderError);

            List<GcRecord> gcs = [.. collector.Snapshot()];
            foreach (GcRecord gc in gcs)
                gc.Snapshot = snapshotGcs.Contains(gc.Number);
            return new EngineResult
            {
                Engine = engine,
                Spec = spec,
                Checkpoints = Attribute(checkpoints, gcs),
                Gcs = gcs,
                Workload = GcTotals.Of(gcs.Where(g => !g.Snapshot)),
                OtherSuspensionMs = collector.OtherSuspensionMs,
                GcEventsLost = gcSource?.EventsLost ?? 0,
                WallSeconds = wall.Elapsed.TotalSeconds,
                ChildExitCode = child.ExitCode,
            };
        }
        catch (VerificationException)
        {
            throw;
        }
        catch (OperationCanceledException)
        {
            Log.WriteLine($"{tag} cancelled during {phase}; stopping the child");
            throw;
        }
        catch (Exception e)
        {
            throw new VerificationException(phase, e.Message + Tail(stderrTail), e);
        }
        finally
        {
            if (child is not null)
            {
                try
                {
                    if (!child.HasExited)
                    {
                        child.Kill(entireProcessTree: true);
                        child.WaitForExit(10_000);
                    }
                }
                catch (InvalidOperationException) { /* already gone */ }
            }
            try { gcSession?.Dispose(); } catch (Exception) { /* best effort */ }
            gcReader?.Join(TimeSpan.FromSeconds(10));
            if (connector is not null)
                connector.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
            child?.Dispose();
            try { File.Delete(port); } catch (IOException) { }
        }
    }

    private static List<CheckpointResult> Attribute(List<(CheckpointResult Raw, HeapSnapshot Snapshot)> points, List<GcRecord> gcs)
    {
        var result = new List<CheckpointResult>();
        if (points.Count == 0)
            return result;
        HeapSnapshot empty = points[0].Snapshot;
        foreach ((CheckpointResult raw, HeapSnapshot snap) in points)
        {
            var top = snap.TopByCount(10).Select(t => new TypeRow(t.Key, t.Value.Count, t.Value.Bytes,
                t.Value.Count - (empty.Types.TryGetValue(t.Key, out TypeCount? e) ? e.Count : 0))).ToList();
            // Also every type whose count changed most since the empty store (what the store's growth costs).
            foreach (string name in snap.Types.Keys.Union(empty.Types.Keys)
                .Select(n => (n, d: (snap.Types.TryGetValue(n, out TypeCount? a) ? a.Count : 0) - (empty.Types.TryGetValue(n, out TypeCount? b) ? b.Count : 0)))
                .Where(x => x.d != 0).OrderByDescending(x => Math.Abs(x.d)).ThenBy(x => x.n, StringComparer.Ordinal).Take(10).Select(x => x.n))
            {
                if (top.Exists(t => t.Type == name))
                    continue;
                TypeCount now = snap.Types.TryGetValue(name, out TypeCount? c) ? c : new TypeCount(0, 0);
                top.Add(new TypeRow(name, now.Count, now.Bytes, now.Count - (empty.Types.TryGetValue(name, out TypeCount? e) ? e.Count : 0)));
            }
            result.Add(new CheckpointResult
            {
                Trees = raw.Trees,
                Nodes = raw.Nodes,
                NativeBytes = raw.NativeBytes,
                TotalsSum = raw.TotalsSum,
                LiveObjects = snap.LiveObjects,
                LiveBytes = snap.LiveBytes,
                AttributableObjects = snap.LiveObjects - empty.LiveObjects,
                AttributableBytes = snap.LiveBytes - empty.LiveBytes,
                SnapshotSeconds = snap.Seconds,
                SnapshotEventsLost = snap.EventsLost,
                SnapshotGcNumber = snap.GcNumber,
                GcSoFar = GcTotals.Of(gcs.Where(g => !g.Snapshot && g.Number < snap.GcNumber)),
                TopTypes = top,
            });
        }
        return result;
    }

    private Process StartChild(WorkloadSpec spec, string port)
    {
        var start = new ProcessStartInfo
        {
            FileName = DotnetHost(),
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(WorkloadPath);
        foreach (string arg in spec.ChildArguments())
            start.ArgumentList.Add(arg);
        // Suspend mode is the default for a DiagnosticPorts entry; said explicitly for the reader.
        start.Environment["DOTNET_DiagnosticPorts"] = port + ",connect,suspend";
        start.Environment["DOTNET_gcServer"] = "0";
        start.Environment["DOTNET_gcConcurrent"] = "0";
        try
        {
            return Process.Start(start) ?? throw new VerificationException("start", "Process.Start returned no process");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new VerificationException("start", $"cannot start '{start.FileName}': {e.Message}", e);
        }
    }

    /// <summary>The dotnet host that runs the workload assembly.</summary>
    private static string DotnetHost()
    {
        string? self = Environment.ProcessPath;
        if (self is not null && Path.GetFileNameWithoutExtension(self).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            return self;
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } hostPath && File.Exists(hostPath))
            return hostPath;
        string exe = OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet";
        if (Environment.GetEnvironmentVariable("DOTNET_ROOT") is { Length: > 0 } root && File.Exists(Path.Combine(root, exe)))
            return Path.Combine(root, exe);
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, exe);
            if (File.Exists(candidate))
                return candidate;
        }
        return exe;
    }

    private static void StartPump(StreamReader reader, Action<string> onLine, Action onEnd, string name)
    {
        var thread = new Thread(() =>
        {
            try
            {
                while (reader.ReadLine() is { } line)
                    onLine(line);
            }
            catch (IOException) { }
            catch (ObjectDisposedException) { }
            finally
            {
                onEnd();
            }
        }) { IsBackground = true, Name = "child " + name };
        thread.Start();
    }

    private static string? NextLine(BlockingCollection<string?> lines, TimeSpan timeout, CancellationToken ct)
    {
        if (lines.TryTake(out string? line, (int)Math.Min(int.MaxValue, timeout.TotalMilliseconds), ct))
            return line;
        if (lines.IsCompleted)
            return null;
        throw new VerificationException("build", $"the child said nothing for {timeout.TotalMinutes:0.#} min");
    }

    private static string Tail(ConcurrentQueue<string> tail) =>
        tail.IsEmpty ? "" : Environment.NewLine + "child stderr:" + Environment.NewLine + "  " + string.Join(Environment.NewLine + "  ", tail);
}

/// <summary>Copies everything read from the inner stream to a file (the recorded .nettrace).</summary>
internal sealed class TeeStream(Stream inner, Stream copy) : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() => copy.Flush();

    public override int Read(byte[] buffer, int offset, int count)
    {
        int n = inner.Read(buffer, offset, count);
        copy.Write(buffer, offset, n);
        return n;
    }

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        copy.Write(buffer[..n]);
        return n;
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            copy.Dispose();
        }
        base.Dispose(disposing);
    }
}
