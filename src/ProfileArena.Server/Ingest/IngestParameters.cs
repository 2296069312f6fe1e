using System.Globalization;
using ProfileArena.Server.Hosting;
using ProfileArena.Server.Http;
using ProfileArena.Server.Storage;

namespace ProfileArena.Server.Ingest;

/// <summary>The query string of an ingest request, validated: pyroscope's parameters and defaults
/// (<c>from</c>/<c>until</c> now, <c>sampleRate</c> 100, <c>spyName</c> unknown, <c>units</c> samples,
/// <c>aggregationType</c> sum).</summary>
public sealed record IngestParameters(IngestName Name, long From, long Until, SeriesMetadata Metadata, string? Format)
{
    private const int MaxShortParameterLength = 64;

    /// <summary>Reads and validates the query.</summary>
    /// <exception cref="RequestException">400 naming the parameter.</exception>
    public static IngestParameters Parse(IQueryCollection query, ServerOptions limits, DateTimeOffset now)
    {
        IngestName name = IngestName.Parse(Single(query, "name"), limits);
        long nowSeconds = now.ToUnixTimeSeconds();
        long from = TimeParameter.ParseOrDefault("from", Single(query, "from"), now, nowSeconds);
        long until = TimeParameter.ParseOrDefault("until", Single(query, "until"), now, nowSeconds);
        if (until < from) throw RequestException.BadRequest($"until ({until}) is before from ({from})");

        uint sampleRate = 100;
        string? rate = Single(query, "sampleRate");
        if (!string.IsNullOrEmpty(rate) && (!uint.TryParse(rate, NumberStyles.None, CultureInfo.InvariantCulture, out sampleRate)))
            throw RequestException.BadRequest($"sampleRate: '{TimeParameter.Excerpt(rate)}' is not a whole number in [0, 2^32)");
        var metadata = new SeriesMetadata(
            Word(query, "spyName", "unknown"),
            sampleRate,
            Word(query, "units", "samples"),
            Word(query, "aggregationType", "sum"));
        if (metadata.AggregationType is not ("sum" or "average"))
            throw RequestException.BadRequest($"aggregationType: '{metadata.AggregationType}' is neither 'sum' nor 'average'");
        string? format = Single(query, "format");
        return new IngestParameters(name, from, until, metadata, string.IsNullOrEmpty(format) ? null : format);
    }

    /// <summary>The one value of <paramref name="key"/>; a parameter given twice is an error.</summary>
    internal static string? Single(IQueryCollection query, string key)
    {
        var values = query[key];
        if (values.Count > 1) throw RequestException.BadRequest($"{key}: given {values.Count} times");
        return values.Count == 0 ? null : values[0];
    }

    private static string Word(IQueryCollection query, string key, string fallback)
    {
        string? v = Single(query, key);
        if (string.IsNullOrEmpty(v)) return fallback;
        if (v.Length > MaxShortParameterLength || !v.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
            throw RequestException.BadRequest($"{key}: '{TimeParameter.Excerpt(v)}' must be at most {MaxShortParameterLength} characters of A-Z a-z 0-9 _ - .");
        return v;
    }
}
