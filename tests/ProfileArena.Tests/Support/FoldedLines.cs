using System.Globalization;
using System.Text;

namespace ProfileArena.Tests.Support;

/// <summary>
/// A deliberately plain reader of collapsed-stack files for the core tests (the real importer lives
/// in Formats and has its own tests): decodes the file with BOM detection, one stack per line
/// ("stack count", split at the last space or tab), skips blank and '#'/'//' comment lines. The count is
/// the last number; a fractional count is truncated to its integer part.
/// </summary>
public static class FoldedLines
{
    public static List<(string Stack, ulong Count)> Read(string path)
    {
        var result = new List<(string, ulong)>();
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        string? line;
        while ((line = reader.ReadLine()) != null)
        {
            if (line.Length == 0 || line.StartsWith('#') || line.StartsWith("//", StringComparison.Ordinal)) continue;
            string trimmed = line.TrimEnd();
            int split = trimmed.LastIndexOfAny([' ', '\t']);
            if (split < 0) continue;
            string number = trimmed[(split + 1)..];
            int dot = number.IndexOf('.');
            if (dot >= 0) number = number[..dot];
            if (!ulong.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out ulong count)) continue;
            result.Add((trimmed[..split].TrimEnd(' ', '\t'), count));
        }
        return result;
    }
}
