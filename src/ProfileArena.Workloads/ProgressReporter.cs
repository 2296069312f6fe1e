using System.Globalization;

namespace ProfileArena.Workloads;

/// <summary>What a <see cref="ProgressReporter"/> counts: a name per unit and how many raw counts make one
/// (bytes are shown in MiB).</summary>
public sealed record ProgressUnit(string Name, long Divisor)
{
    public static ProgressUnit Trees { get; } = new("trees", 1);
    public static ProgressUnit MiB { get; } = new("MiB", 1 << 20);

    public string Format(double count) => Divisor == 1
        ? count.ToString("N0", CultureInfo.InvariantCulture)
        : (count / Divisor).ToString("0.0", CultureInfo.InvariantCulture);
}

/// <summary>
/// The one progress reporter of the command-line tools (convert's large inputs, takehome's steps, verify-gc's
/// builds): percent done, rate and ETA. On a terminal (<see cref="StatusWriter"/>) the line is redrawn in place
/// at most every 0.1 s; redirected, it prints a plain line each time another tenth is done, so logs stay short
/// and the same on every run. <see cref="Pause"/>/<see cref="Resume"/> leave time spent elsewhere (verify-gc's
/// heap snapshots) out of the rate.
/// </summary>
public sealed class ProgressReporter
{
    private static readonly TimeSpan RedrawInterval = TimeSpan.FromSeconds(0.1);
    private readonly TextWriter _log;
    private readonly StatusWriter? _terminal;
    private readonly string _label;
    private readonly long _total;
    private readonly ProgressUnit _unit;
    private readonly TimeProvider _time;
    private readonly long _started;
    private long _resumedAt;
    private TimeSpan _activeBefore; // running time before the last Resume
    private bool _paused;
    private long _done;
    private int _lastTenth;
    private TimeSpan? _lastRedraw;

    /// <param name="log">Where lines go; a <see cref="StatusWriter"/> means a terminal (redraw in place).</param>
    /// <param name="label">Starts every line, e.g. the input's path or "[arena] step 10".</param>
    /// <param name="total">The count at which the work is done (at least 1 is assumed).</param>
    /// <param name="unit">What is counted, and how it is shown.</param>
    /// <param name="time">The clock (tests pass their own); the system clock by default.</param>
    public ProgressReporter(TextWriter log, string label, long total, ProgressUnit unit, TimeProvider? time = null)
    {
        _log = log;
        _terminal = log as StatusWriter;
        _label = label;
        _total = Math.Max(1, total);
        _unit = unit;
        _time = time ?? TimeProvider.System;
        _started = _resumedAt = _time.GetTimestamp();
    }

    /// <summary>Running time so far, paused spans excluded.</summary>
    public TimeSpan Active => _paused ? _activeBefore : _activeBefore + _time.GetElapsedTime(_resumedAt);

    /// <summary>Counts per second of running time (0 before any time has passed).</summary>
    public double Rate => Active > TimeSpan.Zero ? _done / Active.TotalSeconds : 0;

    /// <summary>Time left at the current rate; null while the rate is unknown.</summary>
    public TimeSpan? Eta => Rate > 0 ? TimeSpan.FromSeconds((_total - Math.Min(_done, _total)) / Rate) : null;

    /// <summary>The progress line as it is printed now.</summary>
    public string Text
    {
        get
        {
            int percent = (int)(Math.Min(_done, _total) * 100 / _total);
            string eta = Eta is { } e ? FormatSeconds(e) : "?";
            return $"{_label}: {percent}% ({_unit.Format(_done)} of {_unit.Format(_total)} {_unit.Name}), {_unit.Format(Rate)} {_unit.Name}/s, ETA {eta}";
        }
    }

    /// <summary>Records that <paramref name="done"/> counts are done (a running total, not an increment).</summary>
    public void Report(long done)
    {
        _done = done;
        if (_terminal is not null)
        {
            TimeSpan now = _time.GetElapsedTime(_started);
            if (now - _lastRedraw < RedrawInterval && done < _total) return; // null (never drawn) compares false
            _lastRedraw = now;
            _terminal.Transient(Text);
            return;
        }
        int tenth = (int)(Math.Min(done, _total) * 10 / _total);
        if (tenth <= _lastTenth || tenth >= 10) return; // "done" is said by Done()
        _lastTenth = tenth;
        _log.WriteLine(Text);
    }

    /// <summary>Stops the clock of the rate (the work waits on something else).</summary>
    public void Pause()
    {
        if (_paused) return;
        _activeBefore += _time.GetElapsedTime(_resumedAt);
        _paused = true;
    }

    /// <summary>Starts the clock again after <see cref="Pause"/>.</summary>
    public void Resume()
    {
        if (!_paused) return;
        _resumedAt = _time.GetTimestamp();
        _paused = false;
    }

    /// <summary>Prints the closing line (replacing the in-place line on a terminal).</summary>
    public void Done()
    {
        string rate = Rate > 0 ? $", {_unit.Format(Rate)} {_unit.Name}/s" : "";
        _log.WriteLine($"{_label}: done ({_unit.Format(_done)} {_unit.Name} in {FormatSeconds(Active)}{rate})");
    }

    private static string FormatSeconds(TimeSpan t) => t.TotalSeconds < 100
        ? t.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s"
        : ((long)t.TotalSeconds).ToString(CultureInfo.InvariantCulture) + " s";
}

/// <summary>
/// Standard error on a terminal: a <see cref="ProgressReporter"/> draws one transient line on it, redrawn in
/// place; any other write first erases that line, so log lines and the progress line never mix. Thread-safe
/// (verify-gc logs its child's stderr from another thread).
/// </summary>
public sealed class StatusWriter(TextWriter inner) : TextWriter
{
    private readonly Lock _lock = new();
    private bool _showing;

    /// <summary>A <see cref="StatusWriter"/> over stderr on a terminal, else stderr itself (plain lines).</summary>
    public static TextWriter ForStandardError() => Console.IsErrorRedirected ? Console.Error : new StatusWriter(Console.Error);

    public override System.Text.Encoding Encoding => inner.Encoding;

    /// <summary>Replaces the transient line with <paramref name="text"/> (carriage return, text, erase to end of line).</summary>
    public void Transient(string text)
    {
        lock (_lock)
        {
            inner.Write("\r" + text + "\u001b[K");
            inner.Flush();
            _showing = true;
        }
    }

    public override void Write(char value)
    {
        lock (_lock)
        {
            Erase();
            inner.Write(value);
        }
    }

    public override void Write(string? value)
    {
        lock (_lock)
        {
            Erase();
            inner.Write(value);
        }
    }

    public override void WriteLine(string? value)
    {
        lock (_lock)
        {
            Erase();
            inner.WriteLine(value);
        }
    }

    public override void Flush() => inner.Flush();

    private void Erase()
    {
        if (!_showing) return;
        inner.Write("\r\u001b[K");
        _showing = false;
    }
}
