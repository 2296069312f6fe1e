using System.CommandLine;
using ProfileArena.Cli;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Cli;

/// <summary>The command line on System.CommandLine: the failures issue 13 quotes, --help of every command,
/// both -o forms, and the exit codes (0 ok, 1 bad input, 2 usage), run in-process through <see cref="CliApp.Run"/>
/// (what Main calls) with the CLI's own writers.</summary>
public sealed class CommandLineTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("profilearena-cmdline-").FullName;
    private readonly StringWriter _out = new(), _err = new();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Data(string relative) => Path.Combine(SharedData.TestData, relative);

    private static string Simple => Data("collapsed/speedscope/simple.txt");

    private string Temp(string name) => Path.Combine(_dir, name);

    private int Run(params string[] args) => CliApp.Run(args, _out, _err);

    [Fact]
    public void FlamegraphTakesOutputWithEquals()
    {
        // Issue 13: "flamegraph x.txt -o=o.svg says -o is required".
        Assert.Equal(0, Run("flamegraph", Simple, "-o=" + Temp("o.svg")));
        Assert.StartsWith("<?xml", File.ReadAllText(Temp("o.svg")), StringComparison.Ordinal);
        Assert.DoesNotContain("required", _err.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ConvertTakesOutputWithEquals()
    {
        // Issue 13: "convert x.txt -o=o.txt says unknown option".
        Assert.Equal(0, Run("convert", Simple, "-o=" + Temp("o.txt")));
        Assert.Equal(0, Run("convert", Simple, "-o", Temp("spaced.txt")));
        Assert.Equal("a;b 5\na;b;c 5\na;b;d 4\n", File.ReadAllText(Temp("o.txt"))); // simple.txt's stacks, merged
        Assert.Equal(File.ReadAllText(Temp("spaced.txt")), File.ReadAllText(Temp("o.txt")));
    }

    [Fact]
    public void WorkerHelpShowsHelpAndRunsNothing()
    {
        // Issue 13: "takehome-worker --help starts a 100-tree run". A run prints JSON lines on stdout.
        Assert.Equal(0, Run("takehome-worker", "--help"));
        string text = _out.ToString();
        Assert.Contains("profilearena takehome-worker", text, StringComparison.Ordinal);
        Assert.Contains("--engine", text, StringComparison.Ordinal);
        Assert.DoesNotContain("{", text, StringComparison.Ordinal);
        Assert.Equal("", _err.ToString());
    }

    public static TheoryData<string> CommandNames() => [.. CliApp.Build(new CliIo(TextWriter.Null, TextWriter.Null)).Subcommands.Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(CommandNames))]
    public void EveryCommandHasGeneratedHelpNamingEachOption(string name)
    {
        Command command = CliApp.Build(new CliIo(TextWriter.Null, TextWriter.Null)).Subcommands.Single(c => c.Name == name);
        foreach (string help in new[] { "--help", "-h" })
        {
            _out.GetStringBuilder().Clear();
            Assert.Equal(0, Run(name, help));
            string text = _out.ToString();
            Assert.Contains($"profilearena {name}", text, StringComparison.Ordinal);
            foreach (Option option in command.Options)
                Assert.Contains(option.Name, text, StringComparison.Ordinal);
        }
        Assert.Equal("", _err.ToString());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir)); // help ran nothing, wrote nothing
    }

    [Fact]
    public void RootHelpListsEveryCommand()
    {
        Assert.Equal(0, Run("--help"));
        foreach (Command command in CliApp.Build(new CliIo(TextWriter.Null, TextWriter.Null)).Subcommands)
            Assert.Contains(command.Name, _out.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("convert", "o.txt")]
    [InlineData("convert", "o.json")]
    [InlineData("flamegraph", "o.svg")]
    public void EveryOutputSpellingWritesTheSameFile(string command, string file)
    {
        string input = Data("collapsed/FlameGraph/perf-vertx-stacks-01-collapsed-all.txt");
        string[][] spellings = [["-o", "{0}"], ["-o={0}"], ["-o:{0}"], ["--output", "{0}"], ["--output={0}"]];
        var outputs = new List<byte[]>();
        for (int i = 0; i < spellings.Length; i++)
        {
            string path = Temp($"{i}-{file}");
            Assert.Equal(0, Run([command, input, .. spellings[i].Select(s => string.Format(System.Globalization.CultureInfo.InvariantCulture, s, path))]));
            outputs.Add(File.ReadAllBytes(path));
        }
        Assert.All(outputs, o => Assert.Equal(outputs[0], o));
        Assert.NotEmpty(outputs[0]);
    }

    [Fact]
    public void OptionValuesTakeEitherForm()
    {
        Assert.Equal(0, Run("top", Data("collapsed/speedscope/recursion.txt"), "-n=2"));
        string withEquals = _out.ToString();
        _out.GetStringBuilder().Clear();
        Assert.Equal(0, Run("top", Data("collapsed/speedscope/recursion.txt"), "-n", "2"));
        Assert.Equal(withEquals, _out.ToString());
        Assert.Contains("top 2 by self", withEquals, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData]                                                     // no command
    [InlineData("frobnicate")]                                       // unknown command
    [InlineData("convert", "{in}")]                                  // -o missing
    [InlineData("convert", "-o", "{out}")]                           // INPUT missing
    [InlineData("convert", "{in}", "-o", "{out}", "--bogus")]        // unknown option
    [InlineData("convert", "{in}", "-o", "{out}", "--to", "gif")]    // bad value
    [InlineData("convert", "{in}", "-o", "{out}", "--from", "svg")]  // an output format as input
    [InlineData("convert", "{in}", "-o", "{out}", "--max-decompressed-bytes=3")]
    [InlineData("flamegraph", "{in}", "-o", "{out}", "--to", "json")] // flamegraph has no --to
    [InlineData("flamegraph", "{in}")]
    [InlineData("top", "{in}", "-n", "zero")]
    [InlineData("top", "{in}", "-n", "0")]
    [InlineData("stats", "{in}", "--fractional", "floor")]
    [InlineData("takehome", "--engine", "java")]
    [InlineData("takehome", "--steps", "2", "--trees", "3")]
    [InlineData("takehome-worker")]                                  // --engine required
    [InlineData("takehome-worker", "--engine", "both")]
    [InlineData("verify-gc", "--steps", "2")]
    [InlineData("verify-gc", "--checkpoints", "5,x")]
    [InlineData("verify-gc", "--trees", "10", "--checkpoints", "50")]
    [InlineData("verify-gc", "--width", "100000", "--depth", "100000")]
    public void BadCommandLinesExitTwoAndDoNothing(params string[] args)
    {
        string output = Temp("out.txt");
        string[] resolved = [.. args.Select(a => a.Replace("{in}", Simple, StringComparison.Ordinal).Replace("{out}", output, StringComparison.Ordinal))];
        Assert.Equal(ExitCodes.Usage, Run(resolved));
        Assert.StartsWith("error: ", _err.ToString(), StringComparison.Ordinal);
        Assert.Contains("--help' for usage", _err.ToString(), StringComparison.Ordinal);
        Assert.Equal("", _out.ToString());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir));
    }

    [Fact]
    public void UsageErrorsSayWhatIsWrong()
    {
        Assert.Equal(2, Run("top", Simple, "-n", "zero"));
        Assert.Contains("-n needs a positive integer, got 'zero'", _err.ToString(), StringComparison.Ordinal);
        _err.GetStringBuilder().Clear();
        Assert.Equal(2, Run("takehome", "--steps", "2", "--width", "5"));
        Assert.Contains("--steps cannot be combined with --trees/--width/--depth", _err.ToString(), StringComparison.Ordinal);
        _err.GetStringBuilder().Clear();
        Assert.Equal(2, Run("convert", Simple));
        Assert.Contains("'--output' is required", _err.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void BadInputExitsOneWithFileAndLine()
    {
        string bad = Temp("bad.txt");
        File.WriteAllText(bad, "a;b 1\na;b;c oops\n");
        Assert.Equal(ExitCodes.Failed, Run("convert", bad, "-o=" + Temp("x.txt")));
        Assert.Contains($"{bad}:2", _err.ToString(), StringComparison.Ordinal);
        Assert.False(File.Exists(Temp("x.txt")));
        Assert.Equal(ExitCodes.Failed, Run("stats", Temp("missing.txt")));
        Assert.Equal(ExitCodes.Ok, Run("stats", Simple));
    }

    [Fact]
    public void AtSignIsAPathNotAResponseFile()
    {
        string at = Temp("@simple.txt");
        File.Copy(Simple, at);
        Assert.Equal(0, Run("stats", at));
        Assert.Contains("total         14", _out.ToString(), StringComparison.Ordinal);
    }
}
