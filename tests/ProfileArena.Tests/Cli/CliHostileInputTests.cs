using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using ProfileArena.Cli;
using ProfileArena.Cli.Commands;
using ProfileArena.Formats;

namespace ProfileArena.Tests.Cli;

/// <summary>Issue 14, CLI half: bad input is exit 1 with a message, a failed write leaves no temporary file,
/// -o never replaces a device, a FIFO or a symlink, and deep stacks are linear.</summary>
public sealed class CliHostileInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("profilearena-cli-hostile-").FullName;
    private readonly StringWriter _out = new(), _err = new();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Temp(string name) => Path.Combine(_dir, name);

    private int Run(string command, params string[] args) => CliApp.Run([command, .. args], _out, _err);

    private string Ok()
    {
        string path = Temp("ok.txt");
        File.WriteAllText(path, "a;b 1\na;c 2\n");
        return path;
    }

    [Fact]
    public void TheTwelveBytePprofIsExit1WithItsOffset()
    {
        string path = Temp("m.pb");
        File.WriteAllBytes(path, [0x0A, 0x04, 0x08, 0x01, 0x10, 0x02, 0x22, 0x04, 0x22, 0x05, 0x08, 0x01]);
        Assert.Equal(1, Run("stats", path));
        Assert.Contains($"error: {path}: byte offset 9: not a valid pprof profile", _err.ToString());
    }

    [Fact]
    public void ANewlineInAFunctionNameIsExit1AndLeavesNoFile()
    {
        // A pprof whose function name holds '\n' (written with the exporter), converted to folded text.
        using (var store = new TreeStore())
        {
            ProfileTree tree = store.CreateTree();
            tree.Insert("main;bad\nname", 3);
            using var f = File.Create(Temp("nl.pb.gz"));
            PprofFormat.Export(tree, f);
        }
        Assert.Equal(1, Run("convert", Temp("nl.pb.gz"), "-o", Temp("out.txt")));
        Assert.Contains("error: cannot write this output format", _err.ToString());
        Assert.Contains("contains a newline", _err.ToString());
        Assert.Equal(["nl.pb.gz"], Directory.GetFiles(_dir).Select(Path.GetFileName));

        // An existing output stays as it was.
        File.WriteAllText(Temp("out.txt"), "old 1\n");
        Assert.Equal(1, Run("convert", Temp("nl.pb.gz"), "-o", Temp("out.txt")));
        Assert.Equal("old 1\n", File.ReadAllText(Temp("out.txt")));
        Assert.Equal(["nl.pb.gz", "out.txt"], Directory.GetFiles(_dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // JSON can carry the name.
        Assert.Equal(0, Run("convert", Temp("nl.pb.gz"), "-o", Temp("out.json")));
        Assert.Contains("bad\\nname", File.ReadAllText(Temp("out.json")));
    }

    [Fact]
    public void DevFullIsWrittenStraightAndTheFailedWriteIsExit1()
    {
        Assert.Equal(FileKind.Other, UnixFileType.Of("/dev/full"));
        Assert.Equal(1, Run("convert", Ok(), "-o", "/dev/full"));
        Assert.Contains("error:", _err.ToString());
        Assert.Contains("/dev/full", _err.ToString());
        Assert.Equal(FileKind.Other, UnixFileType.Of("/dev/full")); // still the device (as root it used to become a file)
        Assert.False(File.Exists("/dev/full.tmp"));
        Assert.Equal(0, Run("convert", Ok(), "-o", "/dev/null"));
        Assert.Equal(FileKind.Other, UnixFileType.Of("/dev/null"));
    }

    [Fact]
    public async Task AFifoIsWrittenStraightToItsReader()
    {
        string fifo = Temp("fifo");
        using (var mkfifo = Process.Start("mkfifo", fifo)) Assert.True(mkfifo.WaitForExit(30_000) && mkfifo.ExitCode == 0);
        Assert.Equal(FileKind.Other, UnixFileType.Of(fifo));
        CancellationToken token = TestContext.Current.CancellationToken;
        Task<byte[]> reader = Task.Run(() => File.ReadAllBytes(fifo), token); // blocks until a writer opens the FIFO
        Task<int> convert = Task.Run(() => Run("convert", Ok(), "-o", fifo), token);
        try
        {
            Assert.Equal(0, await convert.WaitAsync(TimeSpan.FromSeconds(60), token));
            // Bounded: a convert that replaced the FIFO instead of opening it leaves the reader blocked.
            byte[] read = await reader.WaitAsync(TimeSpan.FromSeconds(60), token);
            Assert.Equal("a;b 1\na;c 2\n", Encoding.UTF8.GetString(read));
            Assert.Equal(FileKind.Other, UnixFileType.Of(fifo));
        }
        finally
        {
            // A reader still blocked on open (the FIFO was replaced or never opened) is released by a writer.
            if (!reader.IsCompleted && UnixFileType.Of(fifo) == FileKind.Other)
                using (new FileStream(fifo, FileMode.Open, FileAccess.Write)) { }
        }
    }

    [Fact]
    public void ASymlinkIsWrittenThroughAndStaysALink()
    {
        string target = Temp("target.txt"), link = Temp("link.txt");
        File.WriteAllText(target, "old 1\n");
        File.CreateSymbolicLink(link, target);
        Assert.Equal(0, Run("convert", Ok(), "-o", link));
        Assert.Equal(target, new FileInfo(link).LinkTarget);
        Assert.Equal("a;b 1\na;c 2\n", File.ReadAllText(target));

        // A dangling link gets its target created.
        string dangling = Temp("dangling.txt"), missing = Temp("missing.txt");
        File.CreateSymbolicLink(dangling, missing);
        Assert.Equal(0, Run("convert", Ok(), "-o", dangling));
        Assert.Equal("a;b 1\na;c 2\n", File.ReadAllText(missing));
        Assert.Equal(missing, new FileInfo(dangling).LinkTarget);
        Assert.DoesNotContain(Directory.GetFiles(_dir), f => f.EndsWith(".tmp", StringComparison.Ordinal));
    }

    [Fact]
    public void ADirectoryAsOutputIsExit1()
    {
        Assert.Equal(1, Run("convert", Ok(), "-o", _dir));
        Assert.Contains("is a directory", _err.ToString());
    }

    [Fact]
    public void TheDecompressedLimitIsAnOption()
    {
        string bomb = Temp("bomb.pb.gz");
        using (var f = File.Create(bomb))
        using (var gzip = new GZipStream(f, CompressionLevel.SmallestSize))
        {
            byte[] zeros = new byte[1 << 20];
            for (int i = 0; i < 64; i++) gzip.Write(zeros);
        }
        Assert.Equal(1, Run("stats", bomb, "--max-decompressed-bytes", "1048576"));
        Assert.Contains("larger than 1048576 bytes decompressed (--max-decompressed-bytes)", _err.ToString());
        // The default limit (1 GiB) lets 64 MiB through to the protobuf check: zeros are no profile.
        Assert.Equal(1, Run("stats", bomb));
        Assert.Contains("not a valid pprof profile", _err.ToString());
        Assert.Equal(2, Run("stats", bomb, "--max-decompressed-bytes", "lots"));
        Assert.Equal(2, Run("convert", bomb, "-o", Temp("x.txt"), "--max-decompressed-bytes=3"));
    }

    /// <summary>The "run for minutes": stats, top and convert to every format on one 1,000,000-frame
    /// stack, through the visitors that counted ';' over the whole path per node.</summary>
    [Fact]
    public void EveryCommandHandlesAMillionFrameStack()
    {
        const int depth = 1_000_000;
        string deep = Temp("deep.txt");
        File.WriteAllText(deep, string.Join(';', Enumerable.Range(0, depth).Select(i => i % 3 == 0 ? "f" : i % 3 == 1 ? "g" : "h")) + " 5\n");
        Assert.Equal(0, Run("stats", deep));
        Assert.Contains("max depth     1,000,000", _out.ToString());
        Assert.Contains("leaves        1", _out.ToString());

        Assert.Equal(0, Run("top", deep, "-n", "3"));
        // Recursion counted once: each of f, g, h has total 5, not 5 × 333,333.
        Assert.Contains("              5 100.00%  f", _out.ToString());

        foreach (string output in new[] { "deep.json", "deep.svg", "deep.out.txt", "deep.pb.gz" })
            Assert.Equal(0, Run("convert", deep, "-o", Temp(output), "--max-nodes", "2000000"));
        Assert.Equal(File.ReadAllText(deep), File.ReadAllText(Temp("deep.out.txt")));
    }
}
