using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using ProfileArena.Baseline;
using ProfileArena.Formats;

namespace ProfileArena.Tests.Support;

/// <summary>
/// An independent, string-based reading of folded files, written from the policy in README.md
/// ("Formats") with regular expressions instead of the importer's byte scanning. Used as the oracle.
/// </summary>
public static partial class FoldedReference
{
    [GeneratedRegex(@"^(.*)[ \t]([0-9]+(?:\.[0-9]*)?)$", RegexOptions.Singleline)]
    private static partial Regex StackCount();

    [GeneratedRegex(@"^(.*)[ \t]([0-9]+(?:\.[0-9]*)?)$", RegexOptions.Singleline)]
    private static partial Regex TrailingNumber();

    public static string Decode(byte[] bytes)
    {
        if (bytes.Length >= 2 && bytes[0] == 0xFF && bytes[1] == 0xFE) return Encoding.Unicode.GetString(bytes, 2, bytes.Length - 2);
        if (bytes.Length >= 2 && bytes[0] == 0xFE && bytes[1] == 0xFF) return Encoding.BigEndianUnicode.GetString(bytes, 2, bytes.Length - 2);
        if (bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF) return Encoding.UTF8.GetString(bytes, 3, bytes.Length - 3);
        return Encoding.UTF8.GetString(bytes);
    }

    /// <summary>(stack, value) per stack line in file order; null entries for bad lines.</summary>
    public static List<(int Line, string? Stack, ulong Value)> Parse(string text, FoldedImportOptions options)
    {
        var result = new List<(int, string?, ulong)>();
        string[] lines = text.Split('\n');
        if (lines.Length > 0 && lines[^1].Length == 0) lines = lines[..^1]; // the final newline ends the last line
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].EndsWith('\r') ? lines[i][..^1] : lines[i];
            string t = line.TrimEnd(' ', '\t');
            if (t.Length == 0 || t.StartsWith('#') || t.StartsWith("//", StringComparison.Ordinal)) continue;
            Match m = StackCount().Match(t);
            if (!m.Success) { result.Add((i + 1, null, 0)); continue; }
            string stack = m.Groups[1].Value;
            ulong? value = Count(m.Groups[2].Value, options);
            Match two = TrailingNumber().Match(stack.TrimEnd(' ', '\t'));
            if (two.Success && options.TwoCountLines != TwoCountLinePolicy.KeepAsFrameText)
            {
                if (options.TwoCountLines == TwoCountLinePolicy.Reject) { result.Add((i + 1, null, 0)); continue; }
                if (options.TwoCountLines == TwoCountLinePolicy.UseFirst) value = Count(two.Groups[2].Value, options);
                stack = two.Groups[1].Value;
            }
            result.Add((i + 1, value is null ? null : stack, value ?? 0));
        }
        return result;
    }

    private static ulong? Count(string s, FoldedImportOptions options)
    {
        decimal d;
        try { d = decimal.Parse(s.EndsWith('.') ? s + "0" : s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture); }
        catch (OverflowException) { return null; }
        if (d != decimal.Truncate(d))
        {
            if (options.FractionalCounts == FractionalCountPolicy.Reject) return null;
            d = decimal.Round(d, MidpointRounding.AwayFromZero);
        }
        return d > ulong.MaxValue ? null : (ulong)d;
    }

    public static BaselineTree Tree(IEnumerable<(int Line, string? Stack, ulong Value)> lines)
    {
        var tree = new BaselineTree();
        foreach (var (_, stack, value) in lines)
            if (stack is not null) tree.Insert(stack, value);
        return tree;
    }

    public static BaselineTree TreeOfFile(string path, FoldedImportOptions options) =>
        Tree(Parse(Decode(File.ReadAllBytes(path)), options));
}
