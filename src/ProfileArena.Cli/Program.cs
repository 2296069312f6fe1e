namespace ProfileArena.Cli;

/// <summary>Entry point: <see cref="CliApp"/> parses the command line (System.CommandLine) and runs the command.</summary>
internal static class Program
{
    private static int Main(string[] args) => CliApp.Run(args);
}
