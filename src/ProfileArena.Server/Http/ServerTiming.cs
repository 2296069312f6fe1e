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

    /// <summary>A phase of a request: the time since <paramref name="since"/> (a <see cref="System.Diagnostics.Stopwatch"/>
    /// timestamp) into <paramref name="seconds"/> (its metric) and, given <paramref name="response"/>, into the answer as
    /// <paramref name="name"/>; returns now, the start of the next phase.</summary>
    public static long Phase(Prometheus.IObserver seconds, HttpResponse? response, string name, long since)
    {
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        TimeSpan elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(since, now);
        seconds.Observe(elapsed.TotalSeconds);
        if (response is not null) Append(response, name, elapsed.TotalMilliseconds);
        return now;
    }
}
