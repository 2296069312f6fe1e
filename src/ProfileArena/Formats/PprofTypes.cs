namespace ProfileArena.Formats;

/// <summary>Options of <see cref="PprofFormat.Import(Stream, ProfileTree, PprofImportOptions?)"/> and
/// <see cref="PprofFormat.Read(Stream, IPprofSampleSink, PprofImportOptions?)"/>. The limits bound what one
/// profile can cost whatever its content: memory stays proportional to <see cref="MaxBytes"/> and the
/// work per sample to <see cref="MaxStackBytes"/>; past a limit the import fails with a
/// <see cref="ProfileFormatException"/> naming the option.</summary>
public sealed class PprofImportOptions
{
    /// <summary>The sample type to import, by its type name (e.g. "cpu", "samples", "alloc_space");
    /// null (default) takes the first sample type of the profile. <see cref="PprofFormat.Read"/> ignores it
    /// (it delivers every type).</summary>
    public string? SampleType { get; init; }

    /// <summary>Largest decompressed profile accepted, in bytes (default 1 GiB, at most 2 GiB − 1). The input
    /// is read in chunks and refused as soon as it passes this size, so a gzip bomb costs at most this much.</summary>
    public long MaxBytes { get; init; } = 1L << 30;

    /// <summary>Longest stack accepted, in bytes of the <c>a;b;c</c> key (default 4 MiB). Checked while the key
    /// is built, before any buffer grows past it.</summary>
    public int MaxStackBytes { get; init; } = 4 << 20;

    /// <summary>Deepest stack accepted, in frames (default 65,536), inlined frames counted.</summary>
    public int MaxStackFrames { get; init; } = 65_536;

    /// <summary>Most frames over all samples of one profile, as a multiple of the decompressed profile's size in
    /// bytes (default 64; at least <see cref="MaxStackFrames"/> frames are always allowed). One small sample may
    /// name a location of many inlined lines many times; this keeps the work and the tree it builds
    /// proportional to the input.</summary>
    public int MaxFramesPerInputByte { get; init; } = 64;

    internal void Validate()
    {
        if (MaxBytes is < 16 or > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(MaxBytes), MaxBytes, "must be between 16 and 2^31 − 1");
        if (MaxStackBytes is < 16 or > 1 << 30) throw new ArgumentOutOfRangeException(nameof(MaxStackBytes), MaxStackBytes, "must be between 16 and 2^30");
        if (MaxStackFrames < 1) throw new ArgumentOutOfRangeException(nameof(MaxStackFrames), MaxStackFrames, "must be positive");
        if (MaxFramesPerInputByte < 1) throw new ArgumentOutOfRangeException(nameof(MaxFramesPerInputByte), MaxFramesPerInputByte, "must be positive");
    }
}

/// <summary>What a pprof import read.</summary>
public sealed class PprofImportResult
{
    /// <summary>The sample type imported, as "type/unit".</summary>
    public string SampleType { get; init; } = "";

    /// <summary>All sample types of the profile, as "type/unit", in order.</summary>
    public IReadOnlyList<string> SampleTypes { get; init; } = [];

    /// <summary>Samples imported.</summary>
    public long Samples { get; init; }

    /// <summary>Sum of the imported values.</summary>
    public ulong Total { get; init; }

    /// <summary>Frames named by the fallback (no function, or a function without a name).</summary>
    public long UnsymbolizedFrames { get; init; }

    /// <summary>True when the input was gzip-compressed (detected by its magic bytes).</summary>
    public bool Gzipped { get; init; }
}

/// <summary>A pprof ValueType: what a value measures and in which unit (e.g. "cpu", "nanoseconds").</summary>
/// <param name="Type">The type name ("" when the profile leaves it out).</param>
/// <param name="Unit">The unit ("" when the profile leaves it out).</param>
public readonly record struct PprofValueType(string Type, string Unit)
{
    /// <summary>"type/unit".</summary>
    public override string ToString() => $"{Type}/{Unit}";
}

/// <summary>The profile-wide fields of a pprof profile, given to <see cref="IPprofSampleSink.Begin"/>
/// before the first sample.</summary>
public sealed class PprofProfileInfo
{
    /// <summary>The sample types, in order: a sample's values have one entry per type, in this order. Never empty.</summary>
    public IReadOnlyList<PprofValueType> SampleTypes { get; init; } = [];

    /// <summary>The period's type and unit (e.g. "cpu"/"nanoseconds"); ("", "") when absent.</summary>
    public PprofValueType PeriodType { get; init; } = new("", "");

    /// <summary>The sampling period, in <see cref="PeriodType"/>'s unit (0 when absent).</summary>
    public long Period { get; init; }

    /// <summary>When the profile was collected, in nanoseconds since the Unix epoch (0 when absent).</summary>
    public long TimeNanos { get; init; }

    /// <summary>How long the profile covers, in nanoseconds (0 when absent).</summary>
    public long DurationNanos { get; init; }

    /// <summary>The type name of the sample type a viewer shows first ("" when absent).</summary>
    public string DefaultSampleType { get; init; } = "";
}

/// <summary>
/// Receives a pprof profile from <see cref="PprofFormat.Read(Stream, IPprofSampleSink, PprofImportOptions?)"/>:
/// <see cref="Begin"/> once, then <see cref="Sample"/> once per sample in file order.
/// </summary>
/// <remarks>
/// The whole profile is decoded and its tables checked before <see cref="Begin"/>, but a sample can still
/// be found bad later (a missing location, a stack past a limit): then Read throws a
/// <see cref="ProfileFormatException"/> after the sink has seen some samples, and the caller must discard
/// what the sink collected (stage per profile, commit only when Read returns).
/// </remarks>
public interface IPprofSampleSink
{
    /// <summary>Called once, before the first sample.</summary>
    void Begin(PprofProfileInfo info);

    /// <summary>Called once per sample. A <see cref="ProfileFormatException"/> it throws without a byte offset
    /// (e.g. "negative value") reaches Read's caller with the offset of this sample's message.</summary>
    /// <param name="stack">Root-first frames joined by ';' (names never contain ';'; see
    /// <see cref="PprofFormat"/> for the naming rules); valid only during the call.</param>
    /// <param name="values">One value per sample type, in <see cref="PprofProfileInfo.SampleTypes"/> order,
    /// as the profile has them (possibly negative, e.g. in a diff profile); valid only during the call.</param>
    void Sample(ReadOnlySpan<byte> stack, ReadOnlySpan<long> values);
}

/// <summary>What <see cref="PprofFormat.Read(Stream, IPprofSampleSink, PprofImportOptions?)"/> read.</summary>
public sealed class PprofReadResult
{
    /// <summary>The profile-wide fields (the same object the sink's Begin got).</summary>
    public PprofProfileInfo Info { get; init; } = new();

    /// <summary>Samples delivered.</summary>
    public long Samples { get; init; }

    /// <summary>Frames named by the fallback (no function, or a function without a name).</summary>
    public long UnsymbolizedFrames { get; init; }

    /// <summary>True when the input was gzip-compressed (detected by its magic bytes).</summary>
    public bool Gzipped { get; init; }
}

/// <summary>Options of <see cref="PprofFormat.Export(ProfileTree, Stream, PprofExportOptions?)"/>.</summary>
public sealed class PprofExportOptions
{
    /// <summary>The one sample type's name (default "samples").</summary>
    public string SampleType { get; init; } = "samples";

    /// <summary>The one sample type's unit (default "count").</summary>
    public string SampleUnit { get; init; } = "count";

    /// <summary>The period's type and unit, e.g. ("cpu", "nanoseconds"); null (default) leaves period_type out.</summary>
    public PprofValueType? PeriodType { get; init; }

    /// <summary>The sampling period (0, the default, leaves it out).</summary>
    public long Period { get; init; }

    /// <summary>time_nanos: collection time in nanoseconds since the Unix epoch (0, the default, leaves it out).</summary>
    public long TimeNanos { get; init; }

    /// <summary>duration_nanos (0, the default, leaves it out).</summary>
    public long DurationNanos { get; init; }
}
