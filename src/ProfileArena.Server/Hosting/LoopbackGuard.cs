using System.Net;

namespace ProfileArena.Server.Hosting;

/// <summary>
/// An unauthenticated server (no tenant configured) listens on loopback only unless
/// <c>Server:AllowNonLoopback=true</c>: checked on the configured URLs before binding, and on the
/// addresses actually bound once started.
/// </summary>
public static class LoopbackGuard
{
    /// <summary>The URLs the configuration asks for: <c>urls</c> (<c>--urls</c>, <c>ASPNETCORE_URLS</c>) and <c>Kestrel:Endpoints:*:Url</c>.</summary>
    public static IEnumerable<string> ConfiguredUrls(IConfiguration configuration)
    {
        foreach (string url in (configuration["urls"] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            yield return url;
        foreach (IConfigurationSection endpoint in configuration.GetSection("Kestrel:Endpoints").GetChildren())
        {
            if (endpoint["Url"] is { Length: > 0 } url) yield return url;
        }
    }

    /// <summary>True when <paramref name="url"/>'s host is loopback (<c>localhost</c>, 127.0.0.0/8, ::1).</summary>
    public static bool IsLoopback(string url)
    {
        int scheme = url.IndexOf("://", StringComparison.Ordinal);
        string rest = scheme < 0 ? url : url[(scheme + 3)..];
        int slash = rest.IndexOf('/');
        if (slash >= 0) rest = rest[..slash];
        string host;
        if (rest.StartsWith('['))
        {
            int close = rest.IndexOf(']');
            host = close < 0 ? rest : rest[1..close];
        }
        else
        {
            int colon = rest.LastIndexOf(':');
            host = colon < 0 ? rest : rest[..colon];
        }
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return true;
        return IPAddress.TryParse(host, out IPAddress? ip) && IPAddress.IsLoopback(ip);
    }

    /// <summary>Throws when an unauthenticated server would bind a non-loopback address.</summary>
    public static void Check(IEnumerable<string> urls, bool authenticated, bool allowNonLoopback)
    {
        if (authenticated || allowNonLoopback) return;
        string[] outside = [.. urls.Where(u => !IsLoopback(u))];
        if (outside.Length > 0)
            throw new InvalidOperationException(
                $"refusing to listen on {string.Join(", ", outside)}: no tenant is configured, so the server has no authentication. " +
                "Configure tenants (--Auth:Tenants:NAME=KEY), bind 127.0.0.1, or set Server:AllowNonLoopback=true to serve everyone on the network without authentication.");
    }
}
