using System.Text.Json.Serialization;

namespace ProfileArena.Verification;

/// <summary>One checkpoint of one engine: what the child had built and what the heap snapshot saw.</summary>
public sealed class CheckpointResult
{
    public int Trees { get; init; }
    public long Nodes { get; init; }
    public long NativeBytes { get; init; }
    public ulong TotalsSum { get; init; }
    public long LiveObjects { get; init; }
    public long LiveBytes { get; init; }
    /// <summary>Live objects minus the empty-store snapshot's: what the trees cost the managed heap.</summary>
    public long AttributableObjects { get; init; }
    /// <summary>Live bytes minus the empty-store snapshot's.</summary>
    public long AttributableBytes { get; init; }
    public double SnapshotSeconds { get; init; }
    public long SnapshotEventsLost { get; init; }
    public int SnapshotGcNumber { get; init; }
    /// <summary>Workload GCs (snapshot GCs excluded) from the start up to this checkpoint.</summary>
    public GcTotals GcSoFar { get; init; } = new();
    /// <summary>Types by live count, with the change from the empty-store snapshot.</summary>
    public List<TypeRow> TopTypes { get; init; } = [];
}

public sealed record TypeRow(string Type, long Count, long Bytes, long CountDelta);

/// <summary>Everything observed for one engine's child.</summary>
public sealed class EngineResult
{
    public required string Engine { get; init; }
    public required WorkloadSpec Spec { get; init; }
    public List<CheckpointResult> Checkpoints { get; init; } = [];
    /// <summary>Every GC seen, snapshot GCs included (flagged).</summary>
    public List<GcRecord> Gcs { get; init; } = [];
    /// <summary>Workload GCs over the whole run (snapshot GCs excluded).</summary>
    public GcTotals Workload { get; init; } = new();
    public double OtherSuspensionMs { get; init; }
    public long GcEventsLost { get; init; }
    public double WallSeconds { get; init; }
    public int ChildExitCode { get; init; }

    [JsonIgnore]
    public CheckpointResult? Last => Checkpoints.Count == 0 ? null : Checkpoints[^1];
}

/// <summary>The whole verification run: one result per engine.</summary>
public sealed class VerificationReport
{
    public string Command { get; init; } = "";
    public DateTimeOffset Date { get; init; }
    public string Runtime { get; init; } = System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription;
    public List<EngineResult> Engines { get; init; } = [];
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, UseStringEnumConverter = true)]
[JsonSerializable(typeof(VerificationReport))]
public sealed partial class VerificationJson : JsonSerializerContext;
