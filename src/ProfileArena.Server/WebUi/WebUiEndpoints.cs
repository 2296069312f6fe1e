using System.Collections.Frozen;
using System.Reflection;
using System.Security.Cryptography;
using Microsoft.Net.Http.Headers;

namespace ProfileArena.Server.WebUi;

/// <summary>
/// Serves the server's web page: <c>GET /</c> is the page, <c>GET /ui/…</c> its scripts, styles and the
/// npm-supplied vendor files. The files are embedded in this assembly at build time (WebUi.targets), so
/// the page needs no web root on disk. They hold no tenant data: the page calls the API with the
/// tenant's key, so these endpoints need none.
/// </summary>
public static class WebUiEndpoints
{
    /// <summary>Where the page's own files are served from (index.html references them under it).</summary>
    public const string AssetPrefix = "/ui/";

    /// <summary>Maps <c>GET</c> (and <c>HEAD</c>) <c>/</c> and <c>/ui/{path}</c>.</summary>
    public static WebApplication MapWebUi(this WebApplication app)
    {
        var assets = EmbeddedAssets.Load(typeof(WebUiEndpoints).Assembly);
        string[] methods = [HttpMethods.Get, HttpMethods.Head];
        app.MapMethods("/", methods, (HttpContext context) => assets.Serve(context, "index.html"));
        app.MapMethods(AssetPrefix + "{**path}", methods, (HttpContext context, string path) => assets.Serve(context, path));
        return app;
    }
}

/// <summary>The embedded files (resource names <c>WebUi/&lt;path&gt;</c>), read once, with their ETags.</summary>
internal sealed class EmbeddedAssets
{
    private const string ResourcePrefix = "WebUi/";

    private static readonly FrozenDictionary<string, string> ContentTypes = new Dictionary<string, string>
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".svg"] = "image/svg+xml",
        [".png"] = "image/png",
        [".ico"] = "image/x-icon",
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    private readonly FrozenDictionary<string, Asset> _byPath;

    private EmbeddedAssets(FrozenDictionary<string, Asset> byPath) => _byPath = byPath;

    private sealed record Asset(byte[] Bytes, string ContentType, string ETag);

    public static EmbeddedAssets Load(Assembly assembly)
    {
        var byPath = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (string name in assembly.GetManifestResourceNames())
        {
            if (!name.StartsWith(ResourcePrefix, StringComparison.Ordinal)) continue;
            using Stream stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            byte[] bytes = copy.ToArray();
            string type = ContentTypes.GetValueOrDefault(Path.GetExtension(name), "application/octet-stream");
            string etag = "\"" + Convert.ToHexString(SHA256.HashData(bytes), 0, 8) + "\"";
            byPath[name[ResourcePrefix.Length..]] = new Asset(bytes, type, etag);
        }
        if (!byPath.ContainsKey("index.html"))
            throw new InvalidOperationException("the web page (WebUi/index.html) is not embedded in the server assembly: build the server project (WebUi.targets)");
        return new EmbeddedAssets(byPath.ToFrozenDictionary(StringComparer.Ordinal));
    }

    /// <summary>Writes the file at <paramref name="path"/>, 304 when the client has it, 404 when there is none.</summary>
    public IResult Serve(HttpContext context, string path)
    {
        if (!_byPath.TryGetValue(path, out Asset? asset))
            return Results.NotFound($"no web UI file '{path}'");
        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers.ETag = asset.ETag;
        if (context.Request.Headers.IfNoneMatch.ToString() == asset.ETag)
            return Results.StatusCode(StatusCodes.Status304NotModified);
        return Results.Bytes(asset.Bytes, asset.ContentType);
    }
}
