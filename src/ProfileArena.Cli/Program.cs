using ProfileArena.Cli.Commands;

namespace ProfileArena.Cli;

/// <summary>Entry point: a small dispatcher over <see cref="ICommand"/>s (add new commands to the list).</summary>
internal static class Program
{
    private static readonly ICommand[] Commands =
    [
        new TakeHomeCommand(),
        new TakeHomeWorkerCommand(),
        new VerifyGcCommand(),
        new ConvertCommand(),
        new FlameGraphCommand(),
        new TopCommand(),
        new StatsCommand(),
    ];

    private static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            TextWriter writer = args.Length == 0 ? Console.Error : Console.Out;
            PrintUsage(writer);
            return args.Length == 0 ? ExitCodes.Usage : ExitCodes.Ok;
        }

        ICommand? command = Array.Find(Commands, c => c.Name == args[0]);
        if (command is null)
        {
            Console.Error.WriteLine($"error: unknown command '{args[0]}'");
            PrintUsage(Console.Error);
            return ExitCodes.Usage;
        }

        try
        {
            return command.Run(args[1..]);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine(command.Usage);
            return ExitCodes.Usage;
        }
    }

    private static void PrintUsage(TextWriter writer)
    {
        writer.WriteLine("usage: profilearena <command> [options]");
        writer.WriteLine();
        writer.WriteLine("commands:");
        foreach (ICommand c in Commands)
        {
            if (!c.Hidden)
                writer.WriteLine($"  {c.Name,-12} {c.Summary}");
        }
        writer.WriteLine();
        writer.WriteLine("Run 'profilearena <command> --help' for a command's options.");
    }
}
