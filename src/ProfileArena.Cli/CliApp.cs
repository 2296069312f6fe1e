using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using ProfileArena.Cli.Commands;
using ProfileArena.Workloads;

namespace ProfileArena.Cli;

/// <summary>Exit codes of every command.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>Bad input (a file that does not parse, with file:line or byte offset) or a failed write.</summary>
    public const int Failed = 1;

    /// <summary>A bad command line: unknown command or option, missing or malformed value.</summary>
    public const int Usage = 2;
}

/// <summary>Where a command writes: results on <see cref="Out"/>, messages and progress on <see cref="Err"/>
/// (a <see cref="StatusWriter"/> on a terminal, so progress redraws in place).</summary>
internal sealed record CliIo(TextWriter Out, TextWriter Err);

/// <summary>
/// The command tree on System.CommandLine: generated <c>--help</c> for every command, <c>-o FILE</c>,
/// <c>-o=FILE</c> and <c>-o:FILE</c> alike. Parse errors exit 2 before any command runs; a command returns
/// 0 or 1 itself. Response files (<c>@file</c>) are off: an input path may start with '@'.
/// </summary>
internal static class CliApp
{
    public static int Run(string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        var io = new CliIo(stdout ?? Console.Out, stderr ?? StatusWriter.ForStandardError());
        Command root = Build(io);
        ParseResult parsed = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        // --help clears the parse errors (e.g. a required option not given): help is shown, exit 0.
        if (parsed.Errors.Count > 0 && parsed.Action is not CommandLineAction { ClearsParseErrors: true })
        {
            foreach (var error in parsed.Errors)
                io.Err.WriteLine($"error: {error.Message}");
            string command = parsed.CommandResult.Command == root ? "" : " " + parsed.CommandResult.Command.Name;
            io.Err.WriteLine($"Run 'profilearena{command} --help' for usage.");
            return ExitCodes.Usage;
        }
        return parsed.Invoke(new InvocationConfiguration
        {
            Output = io.Out,
            Error = io.Err,
            ProcessTerminationTimeout = null, // verify-gc handles Ctrl+C itself (stops its child first)
        });
    }

    /// <summary>Every command.</summary>
    /// <remarks>A plain <see cref="Command"/> named "profilearena", not a RootCommand, whose name would be the
    /// assembly's (ProfileArena.Cli); the help option is recursive, so every command has its --help.</remarks>
    public static Command Build(CliIo io) => new("profilearena", "A profile store outside the managed heap: formats, flame graphs and the take-home measurements. " +
        "Exit codes: 0 ok, 1 bad input (file:line or byte offset on stderr) or a failed write, 2 usage (unknown option, missing value).")
    {
        new HelpOption { Recursive = true },
        TakeHomeCommand.Create(io),
        TakeHomeWorkerCommand.Create(io),
        VerifyGcCommand.Create(io),
        ConvertCommand.Create(io),
        FlameGraphCommand.Create(io),
        TopCommand.Create(io),
        StatsCommand.Create(io),
    };
}
