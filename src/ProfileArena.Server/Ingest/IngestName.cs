using System.Text;
using ProfileArena.Server.Hosting;
using ProfileArena.Server.Http;
using ProfileArena.Server.Storage;

namespace ProfileArena.Server.Ingest;

/// <summary>
/// The <c>name</c> of an ingest request in pyroscope's segment-key syntax: <c>app{k=v,k2=v2}</c> (labels
/// optional; values unquoted, surrounding spaces trimmed; a value cannot contain <c>,</c> or <c>}</c>).
/// Characters as pyroscope allows them: the application name <c>[A-Za-z0-9_.\-/]</c>, label names
/// <c>[A-Za-z0-9_.]</c>; <c>__name__</c> is reserved. Lengths and the label count are bounded by
/// <see cref="ServerOptions"/>. Everything past the closing <c>}</c> is an error (pyroscope ignores it).
/// </summary>
public sealed record IngestName(string App, IReadOnlyList<Label> Labels)
{
    /// <summary>Parses <paramref name="text"/>.</summary>
    /// <exception cref="RequestException">400 naming the byte offset and what is wrong.</exception>
    public static IngestName Parse(string? text, ServerOptions limits)
    {
        if (string.IsNullOrEmpty(text)) throw Bad(text ?? "", 0, "the 'name' parameter is required (app or app{k=v,...})");
        int brace = text.IndexOf('{');
        string app = (brace < 0 ? text : text[..brace]).Trim();
        if (app.Length == 0) throw Bad(text, 0, "the application name is empty");
        if (app.Length > limits.MaxNameLength) throw Bad(text, 0, $"the application name is longer than {limits.MaxNameLength} characters");
        for (int i = 0; i < app.Length; i++)
        {
            if (!IsAppChar(app[i])) throw Bad(text, ByteOffset(text, text.IndexOf(app, StringComparison.Ordinal) + i), $"character {Show(app[i])} is not allowed in an application name (A-Z a-z 0-9 _ . - /)");
        }
        var labels = new List<Label>();
        if (brace >= 0)
        {
            int close = text.IndexOf('}', brace);
            if (close < 0) throw Bad(text, ByteOffset(text, text.Length), "missing '}'");
            if (close != text.Length - 1 && text.AsSpan(close + 1).Trim().Length > 0)
                throw Bad(text, ByteOffset(text, close + 1), "unexpected text after '}'");
            int pos = brace + 1;
            while (pos < close)
            {
                int end = text.IndexOf(',', pos, close - pos);
                if (end < 0) end = close;
                string pair = text[pos..end];
                if (pair.Trim().Length == 0)
                {
                    if (end == close && pos > brace + 1 && labels.Count > 0) break; // a trailing comma
                    throw Bad(text, ByteOffset(text, pos), "empty label");
                }
                int eq = pair.IndexOf('=');
                if (eq < 0) throw Bad(text, ByteOffset(text, pos), "expected 'name=value'");
                string name = pair[..eq].Trim(), value = pair[(eq + 1)..].Trim();
                ValidateLabelName(text, ByteOffset(text, pos), name, limits);
                if (value.Length > limits.MaxLabelValueLength) throw Bad(text, ByteOffset(text, pos + eq + 1), $"the value of label '{name}' is longer than {limits.MaxLabelValueLength} characters");
                if (!IsPrintable(value))
                    throw Bad(text, ByteOffset(text, pos + eq + 1), $"the value of label '{name}' contains a control character or invalid UTF-16");
                if (labels.Exists(l => l.Name == name)) throw Bad(text, ByteOffset(text, pos), $"label '{name}' is given twice");
                labels.Add(new Label(name, value));
                if (labels.Count > limits.MaxLabels) throw Bad(text, ByteOffset(text, pos), $"more than {limits.MaxLabels} labels");
                pos = end + 1;
            }
        }
        return new IngestName(app, labels);
    }

    /// <summary>The series key of this name with profile name <paramref name="seriesName"/> for <paramref name="tenant"/>.</summary>
    public SeriesKey Key(string tenant, string seriesName) => new(tenant, seriesName, Labels);

    internal static void ValidateLabelName(string text, int offset, string name, ServerOptions limits)
    {
        if (name.Length == 0) throw Bad(text, offset, "empty label name");
        if (name.Length > limits.MaxLabelNameLength) throw Bad(text, offset, $"label name longer than {limits.MaxLabelNameLength} characters");
        if (name == "__name__") throw Bad(text, offset, "label name '__name__' is reserved");
        foreach (char c in name)
        {
            if (!IsLabelChar(c)) throw Bad(text, offset, $"character {Show(c)} is not allowed in label name '{TimeParameter.Excerpt(name)}' (A-Z a-z 0-9 _ .)");
        }
    }

    private static bool IsPrintable(ReadOnlySpan<char> text)
    {
        while (!text.IsEmpty)
        {
            if (Rune.DecodeFromUtf16(text, out Rune r, out int used) != System.Buffers.OperationStatus.Done || Rune.IsControl(r)) return false;
            text = text[used..];
        }
        return true;
    }

    internal static bool IsLabelChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '_' or '.';

    internal static bool IsAppChar(char c) => IsLabelChar(c) || c is '-' or '/';

    private static string Show(char c) => char.IsControl(c) || char.IsSurrogate(c) ? $"U+{(int)c:X4}" : $"'{c}'";

    private static int ByteOffset(string text, int charIndex) => Encoding.UTF8.GetByteCount(text.AsSpan(0, Math.Min(charIndex, text.Length)));

    private static RequestException Bad(string text, int offset, string reason) =>
        RequestException.BadRequest($"name: {reason} (at byte {offset} of '{TimeParameter.Excerpt(text)}')");
}
