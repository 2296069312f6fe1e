using System.CommandLine;

namespace ProfileArena.Cli.Commands;

/// <summary><c>flamegraph INPUT... -o out.svg</c>: an interactive SVG flame graph (convert with the output fixed to SVG).</summary>
internal static class FlameGraphCommand
{
    public static Command Create(CliIo io)
    {
        var inputs = new InputOptions();
        Option<string> output = FormatOptions.Output("out.svg");
        Option<string?> title = FormatOptions.Title();
        var command = new Command("flamegraph", "write an interactive SVG flame graph of folded/pprof inputs (click to zoom, regex search, tooltips; static without scripts)");
        inputs.AddTo(command);
        command.Options.Add(output);
        command.Options.Add(title);
        command.SetAction(r => ConvertCommand.Run(io, inputs.Read(r), r.GetValue(output)!, ProfileFormat.Svg, maxNodes: 1, r.GetValue(title)));
        return command;
    }
}
