using System.Text.Json.Serialization;

namespace ProfileArena.Cli.TakeHomeRun;

/// <summary>One shape of the workload: <see cref="Trees"/> trees of width × depth.</summary>
internal sealed record StepShape(string Label, int Trees, int Width, int Depth);

/// <summary>What one <c>foo;bar;baz</c> = 100 tree costs (the Go program's first report).</summary>
internal sealed class SingleTreeCost
{
    public long ManagedAllocatedBytes { get; init; }
    public long NativeBytes { get; init; }

    public long Nodes { get; init; }
}

/// <summary>Measurements of one step in one worker process.</summary>
internal sealed class StepResult
{
    public required string Label { get; init; }
    public int Trees { get; init; }
    public int Width { get; init; }
    public int Depth { get; init; }
    public long NodesBuilt { get; init; }
    public long NodesAlive { get; init; }
    public int TreesAlive { get; init; }

    /// <summary>Sum of the step's tree totals: both engines see the same trees, so it must match.</summary>
    public ulong TotalsSum { get; init; }
    public double BuildSeconds { get; init; }
    public int Gen0Collections { get; init; }
    public int Gen1Collections { get; init; }
    public int Gen2Collections { get; init; }
    public double GcPauseSeconds { get; init; }
    public double FullCollectionSeconds { get; init; }
    public double FullCollectionMedianSeconds { get; init; }
    public long ManagedHeapBytes { get; init; }
    public long NativeBytes { get; init; }
    public long PeakRssBytes { get; init; }

    public double BytesPerNode => NodesAlive == 0 ? 0 : (double)(ManagedHeapBytes + NativeBytes) / NodesAlive;
}

/// <summary>One line of worker stdout: exactly one of the payloads is set.</summary>
internal sealed class WorkerLine
{
    public SingleTreeCost? Single { get; init; }
    public StepResult? Step { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    IgnoreReadOnlyProperties = true)]
[JsonSerializable(typeof(WorkerLine))]
internal sealed partial class WorkerJson : JsonSerializerContext;
