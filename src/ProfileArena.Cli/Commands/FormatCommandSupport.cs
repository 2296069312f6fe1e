using System.Globalization;
using ProfileArena.Formats;

namespace ProfileArena.Cli.Commands;

/// <summary>Input/output formats of the format commands.</summary>
internal enum ProfileFormat { Folded, Pprof, Json, Svg }

/// <summary>Arguments of the format commands: positionals, and "-x value", "--name value" or "--name=value" options.</summary>
internal sealed class FormatArgs
{
    public List<string> Inputs { get; } = [];
    public string? Output { get; private set; }
    public ProfileFormat? From { get; private set; }
    public ProfileFormat? To { get; private set; }
    public int Top { get; private set; } = 20;
    public int MaxNodes { get; private set; } = 8192;
    public string? SampleType { get; private set; }
    public string? Title { get; private set; }
    public bool Help { get; private set; }
    public long MaxDecompressedBytes { get; private set; } = new PprofImportOptions().MaxBytes;
    public FoldedImportOptions Folded { get; private set; } = FoldedImportOptions.Strict;

    public static FormatArgs Parse(string[] args, string allowed)
    {
        var result = new FormatArgs();
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            if (arg == "-" || !arg.StartsWith('-'))
            {
                result.Inputs.Add(arg);
                continue;
            }
            string name = arg;
            string? inline = null;
            int eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                name = arg[..eq];
                inline = arg[(eq + 1)..];
            }
            if (name is "-h" or "--help")
            {
                result.Help = true;
                continue;
            }
            string key = name.TrimStart('-');
            if (!allowed.Split(' ').Contains(key))
                throw new UsageException($"unknown option '{name}'");
            string Value() => inline ?? (i + 1 < args.Length ? args[++i] : throw new UsageException($"{name} needs a value"));
            switch (key)
            {
                case "o" or "output": result.Output = Value(); break;
                case "from": result.From = ParseFormat(name, Value()); break;
                case "to": result.To = ParseFormat(name, Value()); break;
                case "n": result.Top = PositiveInt(name, Value()); break;
                case "max-nodes": result.MaxNodes = PositiveInt(name, Value()); break;
                case "sample-type": result.SampleType = Value(); break;
                case "title": result.Title = Value(); break;
                case "max-decompressed-bytes":
                    string text = Value();
                    result.MaxDecompressedBytes = long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long max) && max is >= 16 and <= int.MaxValue
                        ? max : throw new UsageException($"{name} takes a byte count from 16 to {int.MaxValue}, got '{text}'");
                    break;
                case "lenient": result.Folded = With(result.Folded, badLines: BadLinePolicy.Skip); break;
                case "allow-empty": result.Folded = With(result.Folded, allowEmpty: true); break;
                case "fractional":
                    result.Folded = With(result.Folded, fractional: Value() switch
                    {
                        "reject" => FractionalCountPolicy.Reject,
                        "round" => FractionalCountPolicy.Round,
                        var v => throw new UsageException($"--fractional takes reject|round, got '{v}'"),
                    });
                    break;
                case "two-counts":
                    result.Folded = With(result.Folded, twoCounts: Value() switch
                    {
                        "reject" => TwoCountLinePolicy.Reject,
                        "first" => TwoCountLinePolicy.UseFirst,
                        "second" => TwoCountLinePolicy.UseSecond,
                        "frame" => TwoCountLinePolicy.KeepAsFrameText,
                        var v => throw new UsageException($"--two-counts takes reject|first|second|frame, got '{v}'"),
                    });
                    break;
                default: throw new UsageException($"unknown option '{name}'");
            }
        }
        return result;
    }

    private static FoldedImportOptions With(FoldedImportOptions o, BadLinePolicy? badLines = null, FractionalCountPolicy? fractional = null,
        TwoCountLinePolicy? twoCounts = null, bool? allowEmpty = null) => new()
    {
        BadLines = badLines ?? o.BadLines,
        FractionalCounts = fractional ?? o.FractionalCounts,
        TwoCountLines = twoCounts ?? o.TwoCountLines,
        AllowEmpty = allowEmpty ?? o.AllowEmpty,
    };

    private static int PositiveInt(string name, string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0 ? v : throw new UsageException($"{name} needs a positive integer, got '{text}'");

    private static ProfileFormat ParseFormat(string name, string text) => text.ToLowerInvariant() switch
    {
        "folded" or "collapsed" or "txt" => ProfileFormat.Folded,
        "pprof" or "pb" => ProfileFormat.Pprof,
        "json" or "flamebearer" => ProfileFormat.Json,
        "svg" => ProfileFormat.Svg,
        _ => throw new UsageException($"{name} takes folded|pprof|json|svg, got '{text}'"),
    };

    /// <summary>Output format from the file name: .json → flamebearer, .svg → flame graph, .pb.gz/.pb/.pprof → pprof,
    /// anything else folded.</summary>
    public static ProfileFormat OutputFormatOf(string path)
    {
        string lower = path.ToLowerInvariant();
        if (lower.EndsWith(".json", StringComparison.Ordinal)) return ProfileFormat.Json;
        if (lower.EndsWith(".svg", StringComparison.Ordinal)) return ProfileFormat.Svg;
        if (lower.EndsWith(".pb.gz", StringComparison.Ordinal) || lower.EndsWith(".pb", StringComparison.Ordinal) || lower.EndsWith(".pprof", StringComparison.Ordinal))
            return ProfileFormat.Pprof;
        return ProfileFormat.Folded;
    }
}

/// <summary>Loading inputs into a tree, with progress and the error reporting shared by the format commands.</summary>
internal static class ProfileInputs
{
    /// <summary>Inputs larger than this report progress on stderr.</summary>
    public const long ProgressThreshold = 4 << 20;

    /// <summary>Input format: --from, else the extension, else the content (gzip or protobuf → pprof, otherwise folded).</summary>
    public static ProfileFormat InputFormatOf(string path, Stream stream, ProfileFormat? from)
    {
        if (from is { } f)
        {
            if (f is ProfileFormat.Json or ProfileFormat.Svg) throw new UsageException("--from takes folded or pprof (json and svg are output formats)");
            return f;
        }
        string lower = path.ToLowerInvariant();
        if (lower.EndsWith(".txt", StringComparison.Ordinal) || lower.EndsWith(".folded", StringComparison.Ordinal) || lower.EndsWith(".collapsed", StringComparison.Ordinal))
            return ProfileFormat.Folded;
        if (lower.EndsWith(".pb.gz", StringComparison.Ordinal) || lower.EndsWith(".pprof", StringComparison.Ordinal) || lower.EndsWith(".pb", StringComparison.Ordinal))
            return ProfileFormat.Pprof;
        if (!stream.CanSeek) return ProfileFormat.Folded;
        Span<byte> head = stackalloc byte[2];
        int n = stream.ReadAtLeast(head, 2, throwOnEndOfStream: false);
        stream.Position = 0;
        return PprofFormat.LooksLikePprof(head[..n]) ? ProfileFormat.Pprof : ProfileFormat.Folded;
    }

    /// <summary>Imports every input into <paramref name="tree"/> (they merge). Throws <see cref="InputException"/> with file:line.</summary>
    public static void Load(IReadOnlyList<string> inputs, ProfileTree tree, FormatArgs args, TextWriter err)
    {
        if (inputs.Count == 0) throw new UsageException("no INPUT given");
        foreach (string path in inputs)
        {
            try
            {
                using Stream file = path == "-" ? Console.OpenStandardInput() : File.OpenRead(path);
                Stream input = file.CanSeek && file.Length > ProgressThreshold ? new ProgressStream(file, path, err) : file;
                ProfileFormat format = InputFormatOf(path, file, args.From);
                if (format == ProfileFormat.Pprof)
                {
                    PprofImportResult r = PprofFormat.Import(input, tree, new PprofImportOptions { SampleType = args.SampleType, MaxBytes = args.MaxDecompressedBytes });
                    err.WriteLine($"{path}: pprof, {r.Samples:N0} samples of {r.SampleType} (types: {string.Join(", ", r.SampleTypes)})");
                }
                else
                {
                    FoldedImportResult r = FoldedFormat.Import(input, tree, args.Folded);
                    if (r.SkippedLines > 0)
                        err.WriteLine($"{path}: skipped {r.SkippedLines:N0} bad lines (first: {string.Join(", ", r.SkippedLineNumbers)})");
                }
                (input as ProgressStream)?.Done();
            }
            catch (ProfileFormatException e)
            {
                string where = e.LineNumber > 0 ? $"{path}:{e.LineNumber}" : e.ByteOffset >= 0 ? $"{path}: byte offset {e.ByteOffset}" : path;
                string excerpt = e.Excerpt is null ? "" : $": \"{e.Excerpt}\"";
                string reason = e.Reason.Replace("PprofImportOptions.MaxBytes", "--max-decompressed-bytes", StringComparison.Ordinal);
                throw new InputException($"{where}: {reason}{excerpt}", e);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or OverflowException or StoreLimitExceededException)
            {
                throw new InputException($"{path}: {e.Message}", e);
            }
        }
    }

    /// <summary>
    /// The body of the read-only commands (top, stats): imports every input into one tree of a fresh
    /// store, hands both to <paramref name="body"/>, and maps bad input to exit code 1.
    /// </summary>
    public static int WithLoadedTree(FormatArgs args, TextWriter err, Func<TreeStore, ProfileTree, int> body) => Guard(err, () =>
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        Load(args.Inputs, tree, args, err);
        return body(store, tree);
    });

    /// <summary>Runs a command body, mapping bad input to exit code 1 with its message on stderr.</summary>
    public static int Guard(TextWriter err, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (InputException e)
        {
            err.WriteLine($"error: {e.Message}");
            return ExitCodes.Failed;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            err.WriteLine($"error: {e.Message}");
            return ExitCodes.Failed;
        }
        catch (ProfileExportException e)
        {
            err.WriteLine($"error: cannot write this output format: {e.Message}");
            return ExitCodes.Failed;
        }
    }
}

/// <summary>Bad input (exit code 1): the message names file and line.</summary>
internal sealed class InputException(string message, Exception inner) : Exception(message, inner);

/// <summary>Reports how far a large input has been read, on stderr, every 10%.</summary>
internal sealed class ProgressStream(Stream inner, string name, TextWriter err) : Stream
{
    private readonly long _length = inner.Length;
    private long _read;
    private int _lastTenth;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        _read += n;
        int tenth = (int)(_read * 10 / Math.Max(1, _length));
        if (tenth > _lastTenth && tenth < 10)
        {
            _lastTenth = tenth;
            err.WriteLine($"{name}: {tenth * 10}% ({_read >> 20} of {_length >> 20} MiB)");
        }
        return n;
    }

    public void Done() => err.WriteLine($"{name}: done ({_length >> 20} MiB)");

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => _length;
    public override long Position { get => _read; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
