using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Analysis;
using Microsoft.Diagnostics.Tracing.Analysis.GC;
using ProfileArena.Verification;

namespace ProfileArena.Tests.Verification;

/// <summary>
/// The GC pause parser against a trace this project recorded and checked in:
/// <c>profilearena verify-gc --engine baseline --trees 100 --width 50 --depth 100 --checkpoints 1 --trace rec</c>
/// (the GC session of the Baseline child: 2 gen0 and 1 gen1 workload GCs, and 4 induced gen2 GCs of the
/// heap snapshots at 0 (settle + empty), 1 and 100 trees).
/// </summary>
public sealed class GcPauseParserTests
{
    private static string TracePath => Path.Combine(AppContext.BaseDirectory, "Verification", "Data", "baseline-100x50x100.nettrace");

    [Fact]
    public void RecordedTraceHasTheExpectedCollections()
    {
        GcEventCollector collector = GcEventCollector.FromFile(TracePath);
        IReadOnlyList<GcRecord> gcs = collector.Snapshot();

        Assert.Equal([1, 2, 3, 4, 5, 6, 7], gcs.Select(g => g.Number));
        Assert.Equal([2, 2, 2, 0, 1, 0, 2], gcs.Select(g => g.Generation));
        Assert.Equal(["Induced", "Induced", "Induced", "AllocSmall", "AllocSmall", "AllocSmall", "Induced"], gcs.Select(g => g.Reason));
        Assert.All(gcs, g => Assert.Equal("NonConcurrentGC", g.Type));
        Assert.All(gcs, g => Assert.True(g.PauseMs > 0 && g.EndMs > g.StartMs && g.PauseMs >= g.EndMs - g.StartMs,
            $"gc {g.Number}: pause {g.PauseMs} ms must cover start..end {g.EndMs - g.StartMs} ms"));
        Assert.Equal(0, collector.OtherSuspensionMs);
        // Blocking GCs: one suspension each, so the longest is the whole pause; stopping the threads is part of it.
        Assert.All(gcs, g => Assert.Equal(1, g.Suspensions));
        Assert.All(gcs, g => Assert.Equal(g.PauseMs, g.LongestSuspensionMs, 9));
        Assert.All(gcs, g => Assert.True(g.SuspendingMs > 0 && g.SuspendingMs < g.PauseMs, $"gc {g.Number}: stopping threads took {g.SuspendingMs} ms of {g.PauseMs} ms"));

        GcTotals totals = GcTotals.Of(gcs);
        Assert.Equal(7, totals.Count);
        Assert.Equal([2, 1, 4], totals.CountByGeneration);
        Assert.Equal(gcs.Sum(g => g.PauseMs), totals.TotalPauseMs, 6);
        Assert.Equal(gcs.Where(g => g.Generation == 2).Max(g => g.PauseMs), totals.MaxPauseMsByGeneration[2], 6);
    }

    [Fact]
    public void PausesMatchTraceEventsOwnGcAnalysis()
    {
        // An independent oracle: TraceEvent's TraceLoadedDotNetRuntime computes each GC's pause itself.
        IReadOnlyList<GcRecord> ours = GcEventCollector.FromFile(TracePath).Snapshot();

        using var source = new EventPipeEventSource(TracePath);
        source.NeedLoadedDotNetRuntimes();
        source.Process();
        List<TraceGC> theirs = source.Processes().SelectMany(p => p.LoadedDotNetRuntime()?.GC.GCs ?? []).ToList();

        Assert.Equal(ours.Select(g => g.Number), theirs.Select(g => g.Number));
        foreach ((GcRecord a, TraceGC b) in ours.Zip(theirs))
        {
            Assert.Equal(b.Generation, a.Generation);
            Assert.Equal(b.PauseDurationMSec, a.PauseMs, 0.01);
        }
    }
}
