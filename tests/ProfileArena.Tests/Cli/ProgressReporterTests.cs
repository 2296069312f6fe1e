using ProfileArena.Workloads;

namespace ProfileArena.Tests.Cli;

/// <summary>The one progress reporter of convert, takehome and verify-gc, on a clock the test moves by hand.</summary>
public sealed class ProgressReporterTests
{
    /// <summary>A clock that only moves when told to.</summary>
    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(double seconds) => _ticks += (long)(seconds * TimeSpan.TicksPerSecond);
    }

    private static string[] Lines(StringWriter w) => w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [Fact]
    public void RedirectedPrintsOneLinePerTenthWithRateAndEta()
    {
        var clock = new ManualClock();
        var log = new StringWriter();
        var progress = new ProgressReporter(log, "[arena] step 10", 100, ProgressUnit.Trees, clock);
        for (int tree = 1; tree <= 100; tree++)
        {
            clock.Advance(0.5); // 2 trees/s
            progress.Report(tree);
        }
        progress.Done();
        string[] lines = Lines(log);
        Assert.Equal(10, lines.Length); // 10% .. 90%, then done
        Assert.Equal("[arena] step 10: 10% (10 of 100 trees), 2 trees/s, ETA 45.0 s", lines[0]);
        Assert.Equal("[arena] step 10: 90% (90 of 100 trees), 2 trees/s, ETA 5.0 s", lines[8]);
        Assert.Equal("[arena] step 10: done (100 trees in 50.0 s, 2 trees/s)", lines[9]);
    }

    [Fact]
    public void PausedTimeIsLeftOutOfTheRate()
    {
        var clock = new ManualClock();
        var progress = new ProgressReporter(TextWriter.Null, "build", 10, ProgressUnit.Trees, clock);
        clock.Advance(2);
        progress.Report(4);
        progress.Pause();
        clock.Advance(100); // a heap snapshot
        progress.Resume();
        clock.Advance(2);
        progress.Report(8);
        Assert.Equal(TimeSpan.FromSeconds(4), progress.Active);
        Assert.Equal(2.0, progress.Rate, 9);
        Assert.Equal(TimeSpan.FromSeconds(1), progress.Eta);
    }

    [Fact]
    public void BytesAreShownInMiB()
    {
        var clock = new ManualClock();
        var progress = new ProgressReporter(TextWriter.Null, "big.txt", 8 << 20, ProgressUnit.MiB, clock);
        clock.Advance(2);
        progress.Report(4 << 20);
        Assert.Equal("big.txt: 50% (4.0 of 8.0 MiB), 2.0 MiB/s, ETA 2.0 s", progress.Text);
    }

    [Fact]
    public void OnATerminalTheLineIsRedrawnInPlaceAndErasedBeforeOtherOutput()
    {
        var clock = new ManualClock();
        var screen = new StringWriter();
        var terminal = new StatusWriter(screen);
        var progress = new ProgressReporter(terminal, "in", 4, ProgressUnit.Trees, clock);
        clock.Advance(1);
        progress.Report(1);
        progress.Report(2); // within 0.1 s of the last redraw: skipped
        clock.Advance(1);
        progress.Report(3);
        terminal.WriteLine("a log line");
        progress.Done();
        const string Erase = "\u001b[K";
        Assert.Equal(
            $"\rin: 25% (1 of 4 trees), 1 trees/s, ETA 3.0 s{Erase}" +
            $"\rin: 75% (3 of 4 trees), 2 trees/s, ETA 0.7 s{Erase}" +
            $"\r{Erase}a log line{Environment.NewLine}" +
            $"in: done (3 trees in 2.0 s, 2 trees/s){Environment.NewLine}",
            screen.ToString());
    }
}
