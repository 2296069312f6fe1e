namespace ProfileArena.Cli.Commands;

/// <summary><c>flamegraph INPUT... -o out.svg</c>: an SVG flame graph.</summary>
internal sealed class FlameGraphCommand(TextWriter? stdout = null, TextWriter? stderr = null) : ICommand
{
    private TextWriter Out => stdout ?? Console.Out;
    private TextWriter Err => stderr ?? Console.Error;

    public string Name => "flamegraph";
    public string Summary => "write an SVG flame graph of folded/pprof inputs";
    public bool Hidden => false;

    public string Usage => """
        usage: profilearena flamegraph INPUT... -o out.svg [--title TEXT] [input options of 'convert']
          Frame widths by total; names clipped to fit; hover a frame for its self, total and percent.
        exit codes: 0 ok, 1 bad input (file:line on stderr), 2 usage
        """;

    public int Run(string[] args)
    {
        // Same options as convert, with the output fixed to SVG.
        if (args.Contains("--to") || args.Any(a => a.StartsWith("--to=", StringComparison.Ordinal)))
            throw new UsageException("flamegraph always writes SVG (no --to)");
        if (args.Length == 0 || args is ["-h" or "--help"])
        {
            if (args.Length == 0) throw new UsageException("no INPUT given");
            Out.WriteLine(Usage);
            return ExitCodes.Ok;
        }
        if (!args.Contains("-o") && !args.Contains("--output") && !args.Any(a => a.StartsWith("--output=", StringComparison.Ordinal)))
            throw new UsageException("-o out.svg is required");
        return new ConvertCommand(stdout, stderr).Run([.. args, "--to", "svg"]);
    }
}
