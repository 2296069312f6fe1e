using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace ProfileArena.Server.Hosting;

/// <summary>
/// Finds the tenant of a request. With no tenant configured: everyone is <see cref="AnonymousTenant"/>
/// and no credentials are asked for. With tenants (<c>Auth:Tenants:&lt;tenant&gt;</c> = key): the key comes
/// as <c>Authorization: Bearer KEY</c> (the pyroscope clients' <c>authToken</c>) or as HTTP basic auth
/// whose password is the key; a basic-auth user name, when given, must be the key's tenant (pyroscope
/// sends the tenant id as the user). Keys are compared in constant time.
/// </summary>
public sealed class TenantResolver
{
    /// <summary>The one tenant of a server without authentication.</summary>
    public const string AnonymousTenant = "anonymous";

    private readonly (string Tenant, byte[] Key)[] _keys;

    public TenantResolver(IOptions<AuthOptions> options)
    {
        var tenants = options.Value.Tenants;
        foreach (var (tenant, key) in tenants)
        {
            if (string.IsNullOrEmpty(key)) throw new InvalidOperationException($"Auth:Tenants:{tenant} has an empty API key");
            if (tenant.Length == 0 || tenant.Length > 128 || !tenant.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
                throw new InvalidOperationException($"Auth:Tenants: tenant name '{tenant}' must be 1-128 characters of A-Z a-z 0-9 _ - .");
        }
        var duplicate = tenants.GroupBy(kv => kv.Value, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new InvalidOperationException($"Auth:Tenants: tenants {string.Join(", ", duplicate.Select(kv => kv.Key))} share one API key");
        _keys = [.. tenants.Select(kv => (kv.Key, Encoding.UTF8.GetBytes(kv.Value)))];
    }

    /// <summary>True when tenants are configured (requests must authenticate).</summary>
    public bool AuthenticationRequired => _keys.Length > 0;

    /// <summary>The request's tenant, or null with the reason when it does not authenticate.</summary>
    public string? Resolve(HttpRequest request, out string? failure)
    {
        failure = null;
        if (!AuthenticationRequired) return AnonymousTenant;
        string header = request.Headers.Authorization.ToString();
        if (header.Length == 0)
        {
            failure = "missing Authorization header (Bearer API key, or basic auth with the key as password)";
            return null;
        }
        string? user = null, key;
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            key = header[7..].Trim();
        }
        else if (header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            string decoded;
            try
            {
                decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
            }
            catch (FormatException)
            {
                failure = "malformed basic auth (not base64)";
                return null;
            }
            int colon = decoded.IndexOf(':');
            if (colon < 0)
            {
                failure = "malformed basic auth (no ':' between user and password)";
                return null;
            }
            user = decoded[..colon];
            key = decoded[(colon + 1)..];
        }
        else
        {
            failure = "unsupported Authorization scheme (use Bearer or Basic)";
            return null;
        }
        byte[] given = Encoding.UTF8.GetBytes(key);
        string? found = null;
        foreach (var (tenant, expected) in _keys)
        {
            // Every key is compared, whether or not one matched already: timing tells nothing.
            if (CryptographicOperations.FixedTimeEquals(given, expected)) found = tenant;
        }
        if (found is null || (!string.IsNullOrEmpty(user) && user != found))
        {
            failure = "invalid API key";
            return null;
        }
        return found;
    }
}
