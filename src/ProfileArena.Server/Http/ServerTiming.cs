using System.Globalization;

namespace ProfileArena.Server.Http;

/// <summary>The <c>Server-Timing</c> response header (W3C Server Timing): where a request's time went inside the
/// server, phase by phase, for a client that times it (the load generator's slowest-1 % breakdowns, a browser's devtools).</summary>
internal static class ServerTiming
{
    /// <summary>One <c>name;dur=ms</c> entry.</summary>
    public static string Entry(string name, double ms) => string.Create(CultureInfo.InvariantCulture, $"{name};dur={ms:0.###}");

    /// <summary>Adds the entry for <paramref name="name"/> to the answer (headers not sent yet).</summary>
    public static void Append(HttpResponse response, string name, double ms) => response.Headers.Append("Server-Timing", Entry(name, ms));
}
