using System.Collections.Immutable;
using System.Text;

namespace ProfileArena.Server.Storage;

/// <summary>One label of a series: a name and its value.</summary>
public readonly record struct Label(string Name, string Value);

/// <summary>
/// The identity of a series: the tenant that owns it, its profile name (<c>app.type</c>, e.g.
/// <c>checkout.cpu</c>) and its labels sorted by name. Two keys with the same labels in another
/// order are equal. <see cref="Canonical"/> is the one text form used for hashing, sharding and the WAL.
/// </summary>
public sealed class SeriesKey : IEquatable<SeriesKey>
{
    /// <summary>Creates a key; labels are sorted by name (ordinal). A label named twice is an error.</summary>
    public SeriesKey(string tenant, string name, IEnumerable<Label> labels)
    {
        Tenant = tenant;
        Name = name;
        Labels = [.. labels.OrderBy(l => l.Name, StringComparer.Ordinal)];
        for (int i = 1; i < Labels.Length; i++)
        {
            if (Labels[i].Name == Labels[i - 1].Name)
                throw new ArgumentException($"label '{Labels[i].Name}' is given twice", nameof(labels));
        }
        var text = new StringBuilder(name).Append('{');
        for (int i = 0; i < Labels.Length; i++)
        {
            if (i > 0) text.Append(',');
            text.Append(Labels[i].Name).Append('=').Append(Labels[i].Value);
        }
        Canonical = text.Append('}').ToString();
    }

    /// <summary>The tenant that owns the series.</summary>
    public string Tenant { get; }

    /// <summary>The profile name: the application name, a dot, the profile type (<c>app.cpu</c>).</summary>
    public string Name { get; }

    /// <summary>The labels, sorted by name.</summary>
    public ImmutableArray<Label> Labels { get; }

    /// <summary><c>name{k=v,...}</c> with labels sorted: the key's text within its tenant.</summary>
    public string Canonical { get; }

    /// <summary>The value of label <paramref name="name"/>; <c>__name__</c> is the profile name.</summary>
    public string? LabelValue(string name)
    {
        if (name == "__name__") return Name;
        foreach (Label l in Labels)
        {
            if (l.Name == name) return l.Value;
        }
        return null;
    }

    /// <inheritdoc/>
    public bool Equals(SeriesKey? other) => other is not null && Tenant == other.Tenant && Canonical == other.Canonical;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as SeriesKey);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Tenant, Canonical);

    /// <inheritdoc/>
    public override string ToString() => $"{Tenant}/{Canonical}";
}

/// <summary>How a series' values are produced and read, as the client declared at ingest.</summary>
/// <param name="SpyName">The agent (<c>nodespy</c>, <c>gospy</c>, …; <c>unknown</c> by default).</param>
/// <param name="SampleRate">Samples per second (100 by default).</param>
/// <param name="Units">The values' unit (<c>samples</c>, <c>nanoseconds</c>, <c>bytes</c>, <c>objects</c>, …).</param>
/// <param name="AggregationType"><c>sum</c> or <c>average</c>.</param>
public sealed record SeriesMetadata(string SpyName, uint SampleRate, string Units, string AggregationType)
{
    /// <summary>pyroscope's defaults: unknown spy, 100 Hz, samples, sum.</summary>
    public static SeriesMetadata Default { get; } = new("unknown", 100, "samples", "sum");
}
