using System.CommandLine;
using ProfileArena.Formats;

namespace ProfileArena.Cli.Commands;

/// <summary><c>convert INPUT... -o OUTPUT</c>: reads folded or pprof inputs (merged into one tree) and writes
/// folded text, flamebearer JSON, gzipped pprof or an SVG flame graph.</summary>
internal static class ConvertCommand
{
    public static Command Create(CliIo io)
    {
        var inputs = new InputOptions();
        Option<string> output = FormatOptions.Output("OUTPUT");
        var to = new Option<ProfileFormat?>("--to")
        {
            Description = "output format: folded|json|svg|pprof (default: the extension: .json flamebearer, .svg flame graph, .pb.gz .pb .pprof gzipped pprof, anything else folded)",
            HelpName = "folded|json|svg|pprof",
            CustomParser = r => FormatOptions.Parse(r, "--to"),
        };
        Option<int> maxNodes = CliOptions.PositiveInt("--max-nodes", "flamebearer node cap", 8192);
        Option<string?> title = FormatOptions.Title();
        var command = new Command("convert", "convert folded/pprof inputs (merged) to folded, flamebearer JSON, pprof or SVG");
        inputs.AddTo(command);
        command.Options.Add(output);
        command.Options.Add(to);
        command.Options.Add(maxNodes);
        command.Options.Add(title);
        command.SetAction(r =>
        {
            string path = r.GetValue(output)!;
            return Run(io, inputs.Read(r), path, r.GetValue(to) ?? FormatOptions.OutputFormatOf(path), r.GetValue(maxNodes), r.GetValue(title));
        });
        return command;
    }

    /// <summary>Loads the inputs and writes them in <paramref name="to"/>; also the body of <c>flamegraph</c>.</summary>
    public static int Run(CliIo io, InputSettings inputs, string outputPath, ProfileFormat to, int maxNodes, string? title) =>
        ProfileInputs.Guard(io.Err, () =>
        {
            using var store = new TreeStore();
            ProfileTree tree = store.CreateTree();
            ProfileInputs.Load(inputs, tree, io.Err);
            string name = inputs.Inputs.Count == 1 ? Path.GetFileName(inputs.Inputs[0]) : $"{inputs.Inputs.Count} profiles";
            OutputFile.Write(outputPath, output => Write(tree, output, to, maxNodes, title ?? name, name));
            io.Err.WriteLine($"wrote {outputPath}: {to.ToString().ToLowerInvariant()}, {tree.NodeCount - 1:N0} nodes, total {tree.Total:N0}");
            return ExitCodes.Ok;
        });

    private static void Write(ProfileTree tree, Stream output, ProfileFormat to, int maxNodes, string title, string name)
    {
        switch (to)
        {
            case ProfileFormat.Json:
                FlamebearerFormat.Export(tree, output, new FlamebearerOptions { MaxNodes = maxNodes, Name = name });
                break;
            case ProfileFormat.Svg:
                FlameGraphSvg.Write(tree, output, new FlameGraphSvgOptions { Title = title });
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
