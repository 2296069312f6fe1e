using System.Text;

namespace ProfileArena.Formats;

/// <summary>
/// Thrown when an input is not valid for the format being imported. A strict import that throws it
/// changed nothing: the target tree is exactly as it was before the call.
/// </summary>
public sealed class ProfileFormatException : FormatException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="lineNumber">1-based line of the problem; 0 when it concerns the input as a whole
    /// (an empty input, a binary format without lines).</param>
    /// <param name="reason">What is wrong, without the line number.</param>
    /// <param name="excerpt">The start of the offending line, or null.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public ProfileFormatException(long lineNumber, string reason, string? excerpt = null, Exception? inner = null)
        : base(Compose(lineNumber, reason, excerpt), inner)
    {
        LineNumber = lineNumber;
        Reason = reason;
        Excerpt = excerpt;
    }

    private ProfileFormatException(long byteOffset, string reason, Exception? inner)
        : base($"byte offset {byteOffset}: {reason}", inner)
    {
        Reason = reason;
        ByteOffset = byteOffset;
    }

    /// <summary>An error in a binary input, at <paramref name="byteOffset"/> (0-based, in the decompressed
    /// data); <see cref="LineNumber"/> is 0.</summary>
    public static ProfileFormatException AtOffset(long byteOffset, string reason, Exception? inner = null) =>
        new(byteOffset, reason, inner);

    /// <summary>1-based number of the offending line; 0 when the error concerns the whole input.</summary>
    public long LineNumber { get; }

    /// <summary>0-based byte offset of the problem in a binary input (after decompression), or -1 when the
    /// error has no offset (text formats report <see cref="LineNumber"/> instead).</summary>
    public long ByteOffset { get; } = -1;

    /// <summary>What is wrong, without the location.</summary>
    public string Reason { get; }

    /// <summary>The start of the offending line (at most about 80 characters), or null.</summary>
    public string? Excerpt { get; }

    private static string Compose(long line, string reason, string? excerpt)
    {
        string where = line > 0 ? $"line {line}: " : "";
        return excerpt is null ? where + reason : $"{where}{reason}: \"{excerpt}\"";
    }

    /// <summary>A short printable excerpt of a line: at most <paramref name="max"/> bytes, decoded as UTF-8
    /// (invalid bytes become U+FFFD), control characters shown as '?', "..." appended when cut.</summary>
    internal static string MakeExcerpt(ReadOnlySpan<byte> line, int max = 80)
    {
        bool cut = line.Length > max;
        string text = Encoding.UTF8.GetString(cut ? line[..max] : line);
        var sb = new StringBuilder(text.Length + 3);
        foreach (char c in text) sb.Append(char.IsControl(c) ? '?' : c);
        if (cut) sb.Append("...");
        return sb.ToString();
    }
}
