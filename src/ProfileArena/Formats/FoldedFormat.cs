using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace ProfileArena.Formats;

/// <summary>
/// Collapsed ("folded") stacks: one <c>frame;frame;frame count</c> per line, as written by FlameGraph's
/// stackcollapse scripts, inferno, async-profiler and speedscope. Policies for every oddity are in
/// README.md, section "Formats".
/// </summary>
/// <remarks>
/// Import streams: it reads pooled byte buffers, finds lines with vectorised searches and inserts each
/// stack straight from the buffer, with no string per line and memory bounded by the longest line
/// (<see cref="FoldedImportOptions.MaxLineBytes"/>). It is atomic: the input is parsed into a private
/// staging tree and committed into the target only when all of it has been read.
/// </remarks>
public static class FoldedFormat
{
    private static ReadOnlySpan<byte> Whitespace => " \t"u8;

    /// <summary>
    /// Reads folded stacks from <paramref name="input"/> and adds them to <paramref name="target"/>:
    /// all of them, or (on error) none.
    /// </summary>
    /// <param name="input">Any readable stream; it is read to its end and not closed.</param>
    /// <param name="target">The tree to add to. Repeated stacks add up.</param>
    /// <param name="options">Policies; <see cref="FoldedImportOptions.Strict"/> when null.</param>
    /// <returns>What was read: line counts, skipped lines, encoding.</returns>
    /// <exception cref="ProfileFormatException">A bad line under <see cref="BadLinePolicy.Fail"/>, a line
    /// longer than <see cref="FoldedImportOptions.MaxLineBytes"/>, or no stack at all; the target is unchanged.</exception>
    /// <exception cref="OverflowException">The target's total would pass 2^64 − 1; the target is unchanged.</exception>
    /// <exception cref="StoreLimitExceededException">The target's store would pass a cap.</exception>
    public static FoldedImportResult Import(Stream input, ProfileTree target, FoldedImportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        _ = target.Store; // a default handle fails before any reading
        using var staging = new StagedImport();
        FoldedImportResult result = ImportInto(input, staging.Tree, options ?? FoldedImportOptions.Strict);
        staging.CommitInto(target);
        return result;
    }

    /// <summary>Parses straight into <paramref name="tree"/> (not atomic: the caller stages).</summary>
    internal static FoldedImportResult ImportInto(Stream input, ProfileTree tree, FoldedImportOptions options)
    {
        options.Validate();
        var parser = new Parser(tree, options);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Min(options.BufferBytes, options.MaxLineBytes + 1));
        Stream? transcoder = null;
        try
        {
            int start = 0, end = 0, scan = 0;
            Stream source = DetectEncoding(input, buffer, ref end, out transcoder, out string encoding);
            bool eof = false;
            while (true)
            {
                int nl = buffer.AsSpan(scan, end - scan).IndexOf((byte)'\n');
                if (nl >= 0)
                {
                    int lineEnd = scan + nl;
                    parser.Line(buffer.AsSpan(start, lineEnd - start));
                    start = scan = lineEnd + 1;
                    continue;
                }
                if (end - start > options.MaxLineBytes)
                    throw new ProfileFormatException(parser.LineNumber + 1,
                        $"line longer than {options.MaxLineBytes} bytes (FoldedImportOptions.MaxLineBytes)",
                        ProfileFormatException.MakeExcerpt(buffer.AsSpan(start, end - start)));
                if (eof)
                {
                    if (end > start) parser.Line(buffer.AsSpan(start, end - start));
                    return parser.Finish(encoding);
                }
                if (start > 0)
                {
                    buffer.AsSpan(start, end - start).CopyTo(buffer);
                    end -= start;
                    start = 0;
                }
                if (end == buffer.Length)
                {
                    byte[] bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, (long)options.MaxLineBytes + 1));
                    buffer.AsSpan(0, end).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                scan = end;
                int read = source.Read(buffer, end, buffer.Length - end);
                if (read == 0) eof = true;
                else end += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            transcoder?.Dispose();
        }
    }

    /// <summary>Reads the first bytes: skips a UTF-8 BOM, switches to a UTF-16 → UTF-8 transcoding stream
    /// after a UTF-16 BOM, rejects what looks like UTF-16 without a BOM. Bytes read that belong to the
    /// content stay in the buffer at [0, end).</summary>
    private static Stream DetectEncoding(Stream input, byte[] buffer, ref int end, out Stream? transcoder, out string encoding)
    {
        transcoder = null;
        encoding = "UTF-8";
        int n = input.ReadAtLeast(buffer.AsSpan(0, 2), 2, throwOnEndOfStream: false);
        if (n == 2 && (buffer[0], buffer[1]) is (0xFF, 0xFE) or (0xFE, 0xFF))
        {
            bool little = buffer[0] == 0xFF;
            encoding = little ? "UTF-16LE with BOM" : "UTF-16BE with BOM";
            transcoder = Encoding.CreateTranscodingStream(input, little ? Encoding.Unicode : Encoding.BigEndianUnicode, Encoding.UTF8, leaveOpen: true);
            end = 0;
            return transcoder;
        }
        if (n == 2 && buffer[0] == 0xEF && buffer[1] == 0xBB)
        {
            n += input.ReadAtLeast(buffer.AsSpan(2, 1), 1, throwOnEndOfStream: false);
            if (n == 3 && buffer[2] == 0xBF)
            {
                encoding = "UTF-8 with BOM";
                n = 0;
            }
        }
        if (n == 2 && (buffer[0] == 0) != (buffer[1] == 0))
            throw new ProfileFormatException(1, "the input looks like UTF-16 without a byte-order mark; re-encode it as UTF-8 (or add a BOM)");
        end = n;
        return input;
    }

    /// <summary>The per-line state machine. A class, not a struct: one per import.</summary>
    private sealed class Parser(ProfileTree tree, FoldedImportOptions options)
    {
        private long _blank, _comments, _stacks, _skipped;
        private ulong _total;
        private List<long>? _skippedLines;

        public long LineNumber { get; private set; }

        public void Line(ReadOnlySpan<byte> line)
        {
            LineNumber++;
            if (!line.IsEmpty && line[^1] == (byte)'\r') line = line[..^1];
            ReadOnlySpan<byte> text = line.TrimEnd(Whitespace);
            if (text.IsEmpty)
            {
                _blank++;
                return;
            }
            if (text[0] == (byte)'#' || text.StartsWith("//"u8))
            {
                _comments++;
                return;
            }

            int sep = text.LastIndexOfAny(Whitespace);
            if (sep < 0)
            {
                Bad(line, "no count: expected 'stack count' (the count after the last space)");
                return;
            }
            CountStatus status = ParseCount(text[(sep + 1)..], options.FractionalCounts, out ulong value);
            if (status != CountStatus.Ok)
            {
                Bad(line, Describe(status, text[(sep + 1)..]));
                return;
            }
            ReadOnlySpan<byte> stack = text[..sep];

            // "stack before after": the text before the count ends in whitespace + a number.
            ReadOnlySpan<byte> head = stack.TrimEnd(Whitespace);
            int sep2 = head.LastIndexOfAny(Whitespace);
            if (sep2 >= 0 && options.TwoCountLines != TwoCountLinePolicy.KeepAsFrameText && LooksLikeNumber(head[(sep2 + 1)..]))
            {
                switch (options.TwoCountLines)
                {
                    case TwoCountLinePolicy.Reject:
                        Bad(line, "two counts ('stack before after', the differential format); choose TwoCountLinePolicy.UseFirst, UseSecond or KeepAsFrameText (CLI: --two-counts first|second|frame)");
                        return;
                    case TwoCountLinePolicy.UseFirst:
                        status = ParseCount(head[(sep2 + 1)..], options.FractionalCounts, out value);
                        if (status != CountStatus.Ok)
                        {
                            Bad(line, Describe(status, head[(sep2 + 1)..]));
                            return;
                        }
                        break;
                }
                stack = head[..sep2];
            }

            try
            {
                tree.Insert(stack, value);
            }
            catch (OverflowException)
            {
                Bad(line, $"adding {value} would take the total past 2^64 − 1");
                return;
            }
            _total += value;
            _stacks++;
        }

        private void Bad(ReadOnlySpan<byte> line, string reason)
        {
            if (options.BadLines == BadLinePolicy.Fail)
                throw new ProfileFormatException(LineNumber, reason, ProfileFormatException.MakeExcerpt(line));
            _skipped++;
            _skippedLines ??= [];
            if (_skippedLines.Count < options.MaxReportedLines) _skippedLines.Add(LineNumber);
        }

        public FoldedImportResult Finish(string encoding)
        {
            if (_stacks == 0 && !options.AllowEmpty)
                throw new ProfileFormatException(0,
                    $"no stack lines found ({LineNumber} lines: {_blank} blank, {_comments} comments, {_skipped} skipped); set AllowEmpty to accept an empty profile");
            return new FoldedImportResult
            {
                Lines = LineNumber,
                StackLines = _stacks,
                BlankLines = _blank,
                CommentLines = _comments,
                SkippedLines = _skipped,
                SkippedLineNumbers = _skippedLines is null ? [] : _skippedLines.ToArray(),
                Total = _total,
                Encoding = encoding,
            };
        }
    }

    internal enum CountStatus { Ok, NotANumber, Negative, TooLarge, Fractional }

    /// <summary>Parses <c>[0-9]+(\.[0-9]*)?</c> into a ulong: exact when the fraction is all zeros,
    /// otherwise rejected or rounded half up.</summary>
    internal static CountStatus ParseCount(ReadOnlySpan<byte> s, FractionalCountPolicy fractional, out ulong value)
    {
        value = 0;
        if (s.IsEmpty) return CountStatus.NotANumber;
        if (s[0] == (byte)'-') return LooksLikeNumber(s[1..]) ? CountStatus.Negative : CountStatus.NotANumber;
        int i = 0;
        ulong v = 0;
        bool tooLarge = false;
        for (; i < s.Length; i++)
        {
            uint d = (uint)(s[i] - '0');
            if (d > 9) break;
            if (v > (ulong.MaxValue - d) / 10) tooLarge = true;
            else v = v * 10 + d;
        }
        if (i == 0) return CountStatus.NotANumber;
        bool roundUp = false, nonZeroFraction = false;
        if (i < s.Length)
        {
            if (s[i] != (byte)'.') return CountStatus.NotANumber;
            ReadOnlySpan<byte> fraction = s[(i + 1)..];
            if (fraction.ContainsAnyExceptInRange((byte)'0', (byte)'9')) return CountStatus.NotANumber;
            nonZeroFraction = fraction.ContainsAnyExcept((byte)'0');
            roundUp = !fraction.IsEmpty && fraction[0] >= (byte)'5';
        }
        if (tooLarge) return CountStatus.TooLarge;
        if (nonZeroFraction)
        {
            if (fractional == FractionalCountPolicy.Reject) return CountStatus.Fractional;
            if (roundUp)
            {
                if (v == ulong.MaxValue) return CountStatus.TooLarge;
                v++;
            }
        }
        value = v;
        return CountStatus.Ok;
    }

    private static bool LooksLikeNumber(ReadOnlySpan<byte> s)
    {
        int digits = s.IndexOfAnyExceptInRange((byte)'0', (byte)'9');
        if (digits == 0) return false;
        if (digits < 0) return true;
        return s[digits] == (byte)'.' && !s[(digits + 1)..].ContainsAnyExceptInRange((byte)'0', (byte)'9');
    }

    private static string Describe(CountStatus status, ReadOnlySpan<byte> count) => status switch
    {
        CountStatus.Negative => $"negative count '{ProfileFormatException.MakeExcerpt(count, 30)}'",
        CountStatus.TooLarge => $"count '{ProfileFormatException.MakeExcerpt(count, 30)}' is above 2^64 − 1",
        CountStatus.Fractional => $"fractional count '{ProfileFormatException.MakeExcerpt(count, 30)}'; choose FractionalCountPolicy.Round (CLI: --fractional round) to round it",
        _ => $"no count: '{ProfileFormatException.MakeExcerpt(count, 30)}' after the last space is not a number",
    };

    /// <summary>
    /// Writes every node with self &gt; 0 as <c>stack self</c> and a '\n', in tree order (depth-first,
    /// siblings in ordinal byte order). Importing the output gives back the same tree, except for paths
    /// that carry no value at all (nodes whose total is 0), which the format cannot express.
    /// </summary>
    /// <returns>The number of lines written.</returns>
    /// <exception cref="ProfileExportException">A frame name that would be written contains '\n', which the
    /// format cannot express; checked in a first pass, so nothing has been written.</exception>
    public static long Export(ProfileTree tree, Stream output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var check = new NewlineCheck(new StackDepthTracker());
        tree.Iterate(ref check);
        using var writer = new PooledWriter(output);
        var visitor = new ExportVisitor(writer);
        tree.Iterate(ref visitor);
        writer.Flush();
        return writer.Lines;
    }

    /// <summary>Refuses a newline in any name that will be written (a node with total &gt; 0 is on some written
    /// line). Looks at each node's own name only, so the pass is linear in the tree, not in the output.</summary>
    private readonly struct NewlineCheck(StackDepthTracker tracker) : IStackVisitor
    {
        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
        {
            tracker.Next(stack);
            if (total > 0 && stack[tracker.NameStart..].Contains((byte)'\n'))
                throw new ProfileExportException($"The frame name '{ProfileFormatException.MakeExcerpt(stack[tracker.NameStart..])}' (depth {tracker.Depth}) contains a newline, which folded text cannot express.");
        }
    }

    private readonly struct ExportVisitor(PooledWriter writer) : IStackVisitor
    {
        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
        {
            if (self == 0) return;
            writer.Write(stack);
            Span<byte> tail = writer.GetSpan(22);
            tail[0] = (byte)' ';
            Utf8Formatter.TryFormat(self, tail[1..], out int written);
            tail[1 + written] = (byte)'\n';
            writer.Advance(written + 2);
            writer.Lines++;
        }
    }
}

/// <summary>A pooled byte buffer in front of a stream.</summary>
internal sealed class PooledWriter(Stream output, int size = 64 << 10) : IDisposable
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(size);
    private int _used;

    public long Lines { get; set; }

    public Span<byte> GetSpan(int min)
    {
        if (_buffer.Length - _used < min)
        {
            Flush();
            if (_buffer.Length < min)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = ArrayPool<byte>.Shared.Rent(min);
            }
        }
        return _buffer.AsSpan(_used);
    }

    public void Advance(int count) => _used += count;

    public void Write(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > _buffer.Length - _used)
        {
            Flush();
            if (bytes.Length > _buffer.Length)
            {
                output.Write(bytes);
                return;
            }
        }
        bytes.CopyTo(_buffer.AsSpan(_used));
        _used += bytes.Length;
    }

    public void Write(string text)
    {
        int max = Encoding.UTF8.GetMaxByteCount(text.Length);
        Span<byte> span = GetSpan(max);
        _used += Encoding.UTF8.GetBytes(text, span);
    }

    public void Flush()
    {
        if (_used > 0) output.Write(_buffer, 0, _used);
        _used = 0;
    }

    public void Dispose()
    {
        byte[] buffer = _buffer;
        _buffer = [];
        if (buffer.Length > 0) ArrayPool<byte>.Shared.Return(buffer);
    }
}
