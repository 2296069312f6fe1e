using System.Globalization;

namespace ProfileArena.Server.Cluster;

/// <summary>The key of a shard grain: <c>tenant/shard-N</c>, with N as the single server draws it
/// (<c>ProfileStorage.ShardNumber</c>). A tenant name may hold '/', so the key is read from its last "/shard-".</summary>
public static class ShardGrainKey
{
    private const string Separator = "/shard-";

    /// <summary>The key of shard <paramref name="number"/> of <paramref name="tenant"/>.</summary>
    public static string For(string tenant, int number) => tenant + Separator + number.ToString(CultureInfo.InvariantCulture);

    /// <summary>Tenant and shard number of <paramref name="key"/>.</summary>
    /// <exception cref="ArgumentException">The key is not <c>tenant/shard-N</c>.</exception>
    public static (string Tenant, int Number) Parse(string key)
    {
        int at = key.LastIndexOf(Separator, StringComparison.Ordinal);
        if (at < 0 || !int.TryParse(key.AsSpan(at + Separator.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int number))
            throw new ArgumentException($"shard grain key '{key}' is not tenant/shard-N", nameof(key));
        return (key[..at], number);
    }
}
