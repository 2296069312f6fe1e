using ProfileArena.Formats;

namespace ProfileArena.Cli.Commands;

/// <summary><c>convert INPUT... -o OUTPUT</c>: reads folded or pprof inputs (merged into one tree) and writes
/// folded text, flamebearer JSON or an SVG flame graph.</summary>
internal sealed class ConvertCommand(TextWriter? stdout = null, TextWriter? stderr = null) : ICommand
{
    private TextWriter Out => stdout ?? Console.Out;
    private TextWriter Err => stderr ?? Console.Error;

    public string Name => "convert";
    public string Summary => "convert folded/pprof inputs (merged) to folded, flamebearer JSON or SVG";
    public bool Hidden => false;

    public string Usage => """
        usage: profilearena convert INPUT... -o OUTPUT [options]
          Inputs merge into one tree. Input format: --from, else the extension (.txt .folded .collapsed:
          folded; .pb .pb.gz .pprof: pprof), else the content (gzip or protobuf: pprof). Output format:
          --to, else the extension (.json: flamebearer, .svg: flame graph, .pb.gz .pb .pprof: gzipped pprof,
          anything else: folded).
          "-" reads stdin / writes stdout.
          --from folded|pprof        --to folded|json|svg|pprof
          --lenient                  skip bad folded lines (reported on stderr) instead of failing
          --fractional reject|round  counts like 31.23 (default reject)
          --two-counts reject|first|second|frame   differential "stack before after" lines (default reject)
          --allow-empty              accept inputs with no stack
          --sample-type NAME         pprof sample type (default: the first)
          --max-decompressed-bytes N largest pprof accepted after gunzip (default 1073741824); a gzip
                                     bomb is refused once N bytes are out, costing at most N bytes of memory
          --max-nodes N              flamebearer node cap (default 8192)
          --title TEXT               flame graph title
          -o PATH writes a regular file through a temporary and a rename (a symlink is followed, the file it
          points to replaced); a device or FIFO is written straight, never replaced.
        exit codes: 0 ok, 1 bad input (file:line on stderr) or a failed write (no temporary left), 2 usage
        """;

    public int Run(string[] args)
    {
        FormatArgs a = FormatArgs.Parse(args, "o output from to lenient fractional two-counts allow-empty sample-type max-nodes title max-decompressed-bytes");
        if (a.Help)
        {
            Out.WriteLine(Usage);
            return ExitCodes.Ok;
        }
        if (a.Output is null) throw new UsageException("-o OUTPUT is required");
        ProfileFormat to = a.To ?? FormatArgs.OutputFormatOf(a.Output);
        return ProfileInputs.Guard(Err, () =>
        {
            using var store = new TreeStore();
            ProfileTree tree = store.CreateTree();
            ProfileInputs.Load(a.Inputs, tree, a, Err);
            string title = a.Inputs.Count == 1 ? Path.GetFileName(a.Inputs[0]) : $"{a.Inputs.Count} profiles";
            OutputFile.Write(a.Output, output => Write(tree, output, to, a, title));
            Err.WriteLine($"wrote {a.Output}: {to.ToString().ToLowerInvariant()}, {tree.NodeCount - 1:N0} nodes, total {tree.Total:N0}");
            return ExitCodes.Ok;
        });
    }

    internal static void Write(ProfileTree tree, Stream output, ProfileFormat to, FormatArgs a, string title)
    {
        switch (to)
        {
            case ProfileFormat.Json:
                FlamebearerFormat.Export(tree, output, new FlamebearerOptions { MaxNodes = a.MaxNodes, Name = title });
                break;
            case ProfileFormat.Svg:
                FlameGraphSvg.Write(tree, output, new FlameGraphSvgOptions { Title = a.Title ?? title });
                break;
            case ProfileFormat.Pprof:
                PprofFormat.Export(tree, output);
                break;
            default:
                FoldedFormat.Export(tree, output);
                break;
        }
    }
}
