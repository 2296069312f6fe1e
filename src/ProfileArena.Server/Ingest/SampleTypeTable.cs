using System.Text.Json;
using System.Text.Json.Serialization;
using ProfileArena.Server.Http;

namespace ProfileArena.Server.Ingest;

/// <summary>How one pprof sample type becomes a series: pyroscope's <c>SampleTypeConfig</c>.</summary>
public sealed record SampleTypeConfig
{
    [JsonPropertyName("units")] public string? Units { get; init; }
    [JsonPropertyName("display-name")] public string? DisplayName { get; init; }
    [JsonPropertyName("aggregation")] public string? Aggregation { get; init; }
    [JsonPropertyName("cumulative")] public bool Cumulative { get; init; }
    [JsonPropertyName("sampled")] public bool Sampled { get; init; }
}

/// <summary>
/// The sample-type table: pyroscope's <c>DefaultSampleTypeMapping</c> (pkg/og/storage/tree/pprof.go),
/// replaced as a whole by a request's <c>sample_type_config</c> part, as pyroscope does. A sample type
/// becomes the series <c>&lt;app&gt;.&lt;display name, else type name&gt;</c> (characters not allowed in a name become <c>_</c>) with the table's units and
/// aggregation (else the pprof unit, <c>count</c> read as <c>samples</c>, and <c>sum</c>).
/// </summary>
public sealed class SampleTypeTable
{
    /// <summary>pyroscope's defaults (README "Running the server" lists them).</summary>
    public static IReadOnlyDictionary<string, SampleTypeConfig> Defaults { get; } = new Dictionary<string, SampleTypeConfig>(StringComparer.Ordinal)
    {
        ["samples"] = new() { DisplayName = "cpu", Units = "samples", Sampled = true },
        ["inuse_objects"] = new() { Units = "objects", Aggregation = "average" },
        ["alloc_objects"] = new() { Units = "objects", Cumulative = true },
        ["inuse_space"] = new() { Units = "bytes", Aggregation = "average" },
        ["alloc_space"] = new() { Units = "bytes", Cumulative = true },
        ["goroutine"] = new() { DisplayName = "goroutines", Units = "goroutines", Aggregation = "average" },
        ["contentions"] = new() { DisplayName = "mutex_count", Units = "lock_samples", Cumulative = true },
        ["delay"] = new() { DisplayName = "mutex_duration", Units = "lock_nanoseconds", Cumulative = true },
    };

    private readonly IReadOnlyDictionary<string, SampleTypeConfig> _table;

    private SampleTypeTable(IReadOnlyDictionary<string, SampleTypeConfig> table) => _table = table;

    /// <summary>The default table.</summary>
    public static SampleTypeTable Default { get; } = new(Defaults);

    /// <summary>Parses a <c>sample_type_config</c> part (JSON object: type → config).</summary>
    /// <exception cref="RequestException">400 with the JSON error's position.</exception>
    public static SampleTypeTable Parse(ReadOnlySpan<byte> json)
    {
        try
        {
            var table = JsonSerializer.Deserialize<Dictionary<string, SampleTypeConfig?>>(json);
            if (table is null) throw RequestException.BadRequest("sample_type_config: expected a JSON object, got null");
            var clean = new Dictionary<string, SampleTypeConfig>(StringComparer.Ordinal);
            foreach (var (type, config) in table)
            {
                if (config is not null) clean[type] = config;
            }
            return new SampleTypeTable(clean);
        }
        catch (JsonException e)
        {
            throw RequestException.BadRequest($"sample_type_config: invalid JSON at line {(e.LineNumber ?? 0) + 1}, byte {e.BytePositionInLine ?? 0}: {e.Message}");
        }
    }

    /// <summary>True when the table has an entry for <paramref name="type"/>.</summary>
    public bool IsKnown(string type) => _table.ContainsKey(type);

    /// <summary>The series type, units and aggregation of pprof sample type <paramref name="type"/> with unit <paramref name="unit"/>.</summary>
    public (string SeriesType, string Units, string Aggregation) Describe(string type, string unit)
    {
        _table.TryGetValue(type, out SampleTypeConfig? config);
        string seriesType = string.IsNullOrEmpty(config?.DisplayName) ? type : config.DisplayName;
        // The type becomes part of a series name: characters a name cannot hold become '_'.
        seriesType = seriesType.Length == 0 ? "unknown" : string.Concat(seriesType.Select(c => IngestName.IsAppChar(c) ? c : '_'));
        string units = !string.IsNullOrEmpty(config?.Units) ? config.Units : unit is "count" or "" ? "samples" : unit;
        string aggregation = !string.IsNullOrEmpty(config?.Aggregation) ? config.Aggregation : "sum";
        return (seriesType, units, aggregation);
    }
}
