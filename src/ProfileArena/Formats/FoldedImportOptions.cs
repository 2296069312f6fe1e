namespace ProfileArena.Formats;

/// <summary>What an import does with a line it cannot use.</summary>
public enum BadLinePolicy
{
    /// <summary>The first bad line fails the whole import with a <see cref="ProfileFormatException"/>;
    /// the target tree is unchanged.</summary>
    Fail,
    /// <summary>Bad lines are skipped and counted; the result lists the first few line numbers.</summary>
    Skip,
}

/// <summary>What a folded import does with a count that has a non-zero fractional part ("31.23").
/// Counts whose fraction is all zeros ("31.0", "6.") are exact integers and always accepted.</summary>
public enum FractionalCountPolicy
{
    /// <summary>The line is bad (see <see cref="BadLinePolicy"/>).</summary>
    Reject,
    /// <summary>Rounded to the nearest integer, halves up ("2.5" → 3, "0.4" → 0).</summary>
    Round,
}

/// <summary>
/// What a folded import does with a two-count line, <c>stack before after</c> (the differential format
/// of FlameGraph's difffolded.pl and inferno-diff-folded). A line is two-count when the text before the
/// count itself ends in whitespace and a number; a frame that really ends in " 12" looks the same.
/// </summary>
public enum TwoCountLinePolicy
{
    /// <summary>The line is bad (see <see cref="BadLinePolicy"/>): the error names the other choices.</summary>
    Reject,
    /// <summary>The first count is the value ("before"); the stack is the text before it.</summary>
    UseFirst,
    /// <summary>The second (last) count is the value ("after"); the stack is the text before the first.</summary>
    UseSecond,
    /// <summary>The last count is the value and the first "count" stays part of the last frame's name.</summary>
    KeepAsFrameText,
}

/// <summary>Options of <see cref="FoldedFormat.Import(Stream, ProfileTree, FoldedImportOptions?)"/>.
/// The defaults are strict: any line that is not blank, a comment or <c>stack count</c> with a whole
/// count fails the import.</summary>
public sealed class FoldedImportOptions
{
    /// <summary>The strict defaults.</summary>
    public static FoldedImportOptions Strict { get; } = new();

    /// <summary>Skips bad lines instead of failing (every other choice at its default).</summary>
    public static FoldedImportOptions Lenient { get; } = new() { BadLines = BadLinePolicy.Skip };

    /// <summary>Fail on the first bad line (default) or skip bad lines.</summary>
    public BadLinePolicy BadLines { get; init; } = BadLinePolicy.Fail;

    /// <summary>Counts with a non-zero fraction: rejected (default) or rounded.</summary>
    public FractionalCountPolicy FractionalCounts { get; init; } = FractionalCountPolicy.Reject;

    /// <summary>Differential <c>stack before after</c> lines: rejected by default.</summary>
    public TwoCountLinePolicy TwoCountLines { get; init; } = TwoCountLinePolicy.Reject;

    /// <summary>When false (default) an input with no stack line at all (empty, or only blank and comment
    /// lines) fails with <see cref="ProfileFormatException.LineNumber"/> 0, as inferno does.</summary>
    public bool AllowEmpty { get; init; }

    /// <summary>Longest line accepted, in bytes (default 64 MiB). The read buffer grows to hold the longest
    /// line seen, so this bounds the importer's memory.</summary>
    public int MaxLineBytes { get; init; } = 64 << 20;

    /// <summary>How many skipped line numbers <see cref="FoldedImportResult.SkippedLineNumbers"/> keeps (default 10).</summary>
    public int MaxReportedLines { get; init; } = 10;

    /// <summary>Initial size of the pooled read buffer, in bytes (default 64 KiB).</summary>
    public int BufferBytes { get; init; } = 64 << 10;

    internal void Validate()
    {
        if (MaxLineBytes < 16) throw new ArgumentOutOfRangeException(nameof(MaxLineBytes), MaxLineBytes, "must be at least 16");
        if (BufferBytes < 16) throw new ArgumentOutOfRangeException(nameof(BufferBytes), BufferBytes, "must be at least 16");
        if (MaxReportedLines < 0) throw new ArgumentOutOfRangeException(nameof(MaxReportedLines), MaxReportedLines, "must not be negative");
    }
}

/// <summary>What a folded import read.</summary>
public sealed class FoldedImportResult
{
    /// <summary>Lines read (a last line without a newline counts).</summary>
    public long Lines { get; init; }

    /// <summary>Lines imported as <c>stack count</c>.</summary>
    public long StackLines { get; init; }

    /// <summary>Empty or whitespace-only lines (ignored).</summary>
    public long BlankLines { get; init; }

    /// <summary>Lines starting with '#' or '//' (ignored).</summary>
    public long CommentLines { get; init; }

    /// <summary>Bad lines skipped under <see cref="BadLinePolicy.Skip"/>.</summary>
    public long SkippedLines { get; init; }

    /// <summary>The first skipped line numbers (at most <see cref="FoldedImportOptions.MaxReportedLines"/>).</summary>
    public IReadOnlyList<long> SkippedLineNumbers { get; init; } = [];

    /// <summary>Sum of the imported counts.</summary>
    public ulong Total { get; init; }

    /// <summary>The encoding detected: "UTF-8", "UTF-8 with BOM", "UTF-16LE with BOM" or "UTF-16BE with BOM".</summary>
    public string Encoding { get; init; } = "UTF-8";
}
