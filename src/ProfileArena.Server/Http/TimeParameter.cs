using System.Globalization;

namespace ProfileArena.Server.Http;

/// <summary>
/// pyroscope's <c>attime</c> syntax for <c>from</c>/<c>until</c>: unix time as digits, scaled by its
/// length as pyroscope does (13 digits milliseconds, 16 microseconds, 19 nanoseconds, 8 digits a
/// <c>YYYYMMDD</c> date, anything else seconds), or <c>now</c> with offsets (<c>now-1h</c>, <c>now-30m</c>,
/// <c>now-1h30m</c>, <c>now+5s</c>; units s, m/min, h, d, w, M/mon, y). Underscores, commas and spaces are
/// ignored, as in pyroscope. Unlike pyroscope (which reads garbage as 1970), anything else is an error.
/// </summary>
public static class TimeParameter
{
    /// <summary>Latest accepted time: storage's limit (<see cref="Storage.BucketMath.MaxTime"/>, year 2286),
    /// which also catches milliseconds sent as seconds.</summary>
    public const long MaxSeconds = Storage.BucketMath.MaxTime;

    /// <summary>Parses <paramref name="text"/> to unix seconds (sub-second parts are dropped).</summary>
    /// <exception cref="RequestException">400 naming <paramref name="parameter"/> and the byte offset.</exception>
    public static long Parse(string parameter, string text, DateTimeOffset now)
    {
        string s = text.Trim().Replace("_", "").Replace(",", "").Replace(" ", "");
        if (s.Length == 0) throw Bad(parameter, text, 0, "empty");
        if (s.All(char.IsAsciiDigit))
        {
            if (s.Length == 8 && DateTime.TryParseExact(s, "yyyyMMdd", CultureInfo.InvariantCulture,
                    DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out DateTime date) && date.Year > 1900)
                return new DateTimeOffset(date, TimeSpan.Zero).ToUnixTimeSeconds();
            if (s.Length > 19 || !long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long v))
                throw Bad(parameter, text, 0, "number too large for a unix time");
            long seconds = s.Length switch
            {
                13 => v / 1_000,
                16 => v / 1_000_000,
                19 => v / 1_000_000_000,
                _ => v,
            };
            if (seconds > MaxSeconds) throw Bad(parameter, text, 0, $"after {MaxSeconds} (year 2286, the latest time stored)");
            return seconds;
        }
        if (s[0] == '-' && s.Length > 1 && s.Skip(1).All(char.IsAsciiDigit))
            throw Bad(parameter, text, 0, "negative unix time");

        int i = 0;
        if (s.StartsWith("now", StringComparison.Ordinal)) i = 3;
        long result = now.ToUnixTimeSeconds();
        if (i == s.Length) return result;
        if (s[i] is not ('-' or '+'))
            throw Bad(parameter, text, i, "expected unix time, 'now', or 'now-1h' style offsets");
        int sign = s[i] == '-' ? -1 : 1;
        i++;
        if (i == s.Length) throw Bad(parameter, text, i, "expected a number after the sign");
        while (i < s.Length)
        {
            int start = i;
            while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
            if (i == start) throw Bad(parameter, text, i, "expected a number");
            if (i - start > 12) throw Bad(parameter, text, start, "offset too large");
            long n = long.Parse(s.AsSpan(start, i - start), CultureInfo.InvariantCulture);
            int unitStart = i;
            while (i < s.Length && !char.IsAsciiDigit(s[i])) i++;
            long unit = UnitSeconds(s[unitStart..i]);
            if (unit == 0) throw Bad(parameter, text, unitStart, $"unknown unit '{s[unitStart..i]}' (s, m, h, d, w, M, y)");
            result += sign * n * unit;
        }
        if (result < 0 || result > MaxSeconds) throw Bad(parameter, text, 0, $"out of range (before 1970 or after {MaxSeconds}, year 2286)");
        return result;
    }

    /// <summary>Parses an optional parameter: <paramref name="fallback"/> when absent or empty.</summary>
    public static long ParseOrDefault(string parameter, string? text, DateTimeOffset now, long fallback) =>
        string.IsNullOrWhiteSpace(text) ? fallback : Parse(parameter, text, now);

    // pyroscope's unit prefixes, checked in its order: "s…", "mon…"/"M…", "min…"/"m…", "h…", "d…", "w…", "y…".
    private static long UnitSeconds(string unit)
    {
        if (unit.StartsWith('s')) return 1;
        if (unit.StartsWith("mon", StringComparison.Ordinal) || unit.StartsWith('M')) return 30 * 86400;
        if (unit.StartsWith('m')) return 60;
        if (unit.StartsWith('h')) return 3600;
        if (unit.StartsWith('d')) return 86400;
        if (unit.StartsWith('w')) return 7 * 86400;
        if (unit.StartsWith('y')) return 365 * 86400;
        return 0;
    }

    private static RequestException Bad(string parameter, string text, int offset, string reason) =>
        RequestException.BadRequest($"{parameter}: {reason} at byte {offset} of '{Excerpt(text)}'");

    internal static string Excerpt(string text) => text.Length <= 80 ? text : text[..80] + "…";
}
