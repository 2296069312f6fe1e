using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using ProfileArena.Formats;
using ProfileArena.Workloads;

namespace ProfileArena.Cli.Commands;

/// <summary>Input/output formats of the format commands.</summary>
internal enum ProfileFormat { Folded, Pprof, Json, Svg }

/// <summary>What the input options of the format commands say: the inputs and how to read them.</summary>
internal sealed record InputSettings(IReadOnlyList<string> Inputs, ProfileFormat? From, string? SampleType, long MaxDecompressedBytes, FoldedImportOptions Folded);

/// <summary>
/// The inputs and input options every format command takes (convert, flamegraph, top, stats): one
/// definition, added to each command by <see cref="AddTo"/> and read back by <see cref="Read"/>.
/// </summary>
internal sealed class InputOptions
{
    private readonly Argument<string[]> _inputs = new("INPUT")
    {
        Description = "profiles to read (merged into one tree); '-' reads stdin",
        Arity = ArgumentArity.OneOrMore,
    };

    private readonly Option<ProfileFormat?> _from = new("--from")
    {
        Description = "input format: folded|pprof (default: the extension, else the content)",
        HelpName = "folded|pprof",
        CustomParser = r =>
        {
            ProfileFormat? f = FormatOptions.Parse(r, "--from");
            if (f is ProfileFormat.Json or ProfileFormat.Svg) r.AddError("--from takes folded or pprof (json and svg are output formats)");
            return f;
        },
    };

    private readonly Option<bool> _lenient = new("--lenient") { Description = "skip bad folded lines (reported on stderr) instead of failing" };
    private readonly Option<bool> _allowEmpty = new("--allow-empty") { Description = "accept inputs with no stack" };
    private readonly Option<string> _fractional = CliOptions.OneOf("--fractional", "folded counts like 31.23", "reject", "reject", "round");
    private readonly Option<string> _twoCounts = CliOptions.OneOf("--two-counts", "differential \"stack before after\" lines", "reject", "reject", "first", "second", "frame");
    private readonly Option<string?> _sampleType = new("--sample-type") { Description = "pprof sample type (default: the first)", HelpName = "NAME" };

    private readonly Option<long> _maxDecompressed = new("--max-decompressed-bytes")
    {
        Description = "largest pprof accepted after gunzip; a gzip bomb is refused once N bytes are out, costing at most N bytes of memory",
        HelpName = "N",
        DefaultValueFactory = _ => new PprofImportOptions().MaxBytes,
        CustomParser = r =>
        {
            string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
            if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long max) && max is >= 16 and <= int.MaxValue) return max;
            r.AddError($"--max-decompressed-bytes takes a byte count from 16 to {int.MaxValue}, got '{text}'");
            return 0;
        },
    };

    public InputOptions()
    {
        // An unknown option would otherwise be taken for an input path; as before, only "-" (stdin) may start with '-'.
        _inputs.Validators.Add(r =>
        {
            foreach (var token in r.Tokens)
            {
                if (token.Value.Length > 1 && token.Value[0] == '-')
                    r.AddError($"unknown option '{token.Value}'");
            }
        });
    }

    public void AddTo(Command command)
    {
        command.Arguments.Add(_inputs);
        foreach (Option o in new Option[] { _from, _lenient, _fractional, _twoCounts, _allowEmpty, _sampleType, _maxDecompressed })
            command.Options.Add(o);
    }

    public InputSettings Read(ParseResult r) => new(
        r.GetValue(_inputs) ?? [],
        r.GetValue(_from),
        r.GetValue(_sampleType),
        r.GetValue(_maxDecompressed),
        new FoldedImportOptions
        {
            BadLines = r.GetValue(_lenient) ? BadLinePolicy.Skip : FoldedImportOptions.Strict.BadLines,
            AllowEmpty = r.GetValue(_allowEmpty),
            FractionalCounts = r.GetValue(_fractional) == "round" ? FractionalCountPolicy.Round : FractionalCountPolicy.Reject,
            TwoCountLines = r.GetValue(_twoCounts) switch
            {
                "first" => TwoCountLinePolicy.UseFirst,
                "second" => TwoCountLinePolicy.UseSecond,
                "frame" => TwoCountLinePolicy.KeepAsFrameText,
                _ => TwoCountLinePolicy.Reject,
            },
        });
}

/// <summary>The output side of convert and flamegraph.</summary>
internal static class FormatOptions
{
    /// <summary>-o/--output PATH (required): "-" is stdout.</summary>
    public static Option<string> Output(string helpName) => new("--output", "-o")
    {
        Description = "where to write ('-' is stdout). A regular file is written through a temporary and a rename " +
            "(a symlink is followed, the file it points to replaced); a device or FIFO is written straight, never replaced",
        HelpName = helpName,
        Required = true,
    };

    public static Option<string?> Title() => new("--title") { Description = "flame graph title (default: the input's file name)", HelpName = "TEXT" };

    public static ProfileFormat? Parse(ArgumentResult r, string name)
    {
        string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
        ProfileFormat? format = text.ToLowerInvariant() switch
        {
            "folded" or "collapsed" or "txt" => ProfileFormat.Folded,
            "pprof" or "pb" => ProfileFormat.Pprof,
            "json" or "flamebearer" => ProfileFormat.Json,
            "svg" => ProfileFormat.Svg,
            _ => null,
        };
        if (format is null) r.AddError($"{name} takes folded|pprof|json|svg, got '{text}'");
        return format;
    }

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
            return f; // folded or pprof: the option refuses the output formats
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
    public static void Load(InputSettings args, ProfileTree tree, TextWriter err)
    {
        foreach (string path in args.Inputs)
        {
            try
            {
                using Stream file = path == "-" ? Console.OpenStandardInput() : File.OpenRead(path);
                Stream input = file.CanSeek && file.Length > ProgressThreshold ? new ProgressStream(file, new ProgressReporter(err, path, file.Length, ProgressUnit.MiB)) : file;
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
    public static int WithLoadedTree(InputSettings args, TextWriter err, Func<TreeStore, ProfileTree, int> body) => Guard(err, () =>
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        Load(args, tree, err);
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

/// <summary>Tells a <see cref="ProgressReporter"/> how many bytes of a large input have been read.</summary>
internal sealed class ProgressStream(Stream inner, ProgressReporter progress) : Stream
{
    private readonly long _length = inner.Length;
    private long _read;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        _read += n;
        progress.Report(_read);
        return n;
    }

    public void Done() => progress.Done();

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
