using System.Text;
using ProfileArena.Formats;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Formats;

/// <summary>
/// The pprof decoder joins each location's frames once and copies them per sample; a location it cannot join, or
/// whose joined frames would pass a limit, goes frame by frame as every location did before. Differential: the same
/// profile decoded both ways gives the same samples (stacks and values, in order), the same unsymbolized count, or the
/// same error (message and byte offset) — over every real pprof file, mutations of them, and random profiles with
/// tight limits and broken references.
/// </summary>
public class PprofJoinedLocationsTests
{
    /// <summary>What a decode produced: every sample as text, or the error.</summary>
    private static string Outcome(byte[] raw, PprofImportOptions options, bool join)
    {
        var sink = new RecordingSink();
        try
        {
            PprofReadResult r = PprofFormat.ReadRaw(raw, sink, options, join);
            sink.Text.Append($"samples {r.Samples}, unsymbolized {r.UnsymbolizedFrames}");
            return sink.Text.ToString();
        }
        catch (ProfileFormatException e)
        {
            return $"{sink.Count} samples, then error at {e.ByteOffset}: {e.Reason}";
        }
    }

    private static void AssertSame(byte[] raw, PprofImportOptions options, string what)
    {
        string joined = Outcome(raw, options, join: true), perLine = Outcome(raw, options, join: false);
        if (joined != perLine) Assert.Fail($"{what}: joined and per-line decodes differ\n joined:   {Excerpt(joined)}\n per-line: {Excerpt(perLine)}");
    }

    private static string Excerpt(string s) => s.Length <= 2000 ? s : s[..1000] + " … " + s[^1000..];

    private static PprofImportOptions TightLimits(Random rng) => new()
    {
        MaxStackFrames = rng.Next(1, 40),
        MaxStackBytes = rng.Next(16, 400),
        MaxFramesPerInputByte = rng.Next(1, 4),
    };

    [Fact]
    public void RealFilesDecodeTheSameBothWays()
    {
        var rng = new Random(12);
        foreach (string path in SharedData.Files("pprof"))
        {
            byte[] raw = HostileInputTests.Gunzip(File.ReadAllBytes(path));
            AssertSame(raw, new PprofImportOptions(), SharedData.Relative(path));
            // Limits met halfway through: the joined frames must fall back where a frame passes one.
            for (int i = 0; i < 4; i++) AssertSame(raw, new PprofImportOptions { MaxStackFrames = rng.Next(2, 30), MaxStackBytes = rng.Next(40, 2000) }, SharedData.Relative(path) + " with tight limits");
        }
    }

    [Fact]
    public void MutatedRealFilesDecodeTheSameBothWays()
    {
        var rng = new Random(7);
        var seeds = SharedData.Files("pprof").Select(p => (Name: SharedData.Relative(p), Raw: HostileInputTests.Gunzip(File.ReadAllBytes(p)))).Where(s => s.Raw.Length > 0).ToList();
        Assert.NotEmpty(seeds);
        for (int i = 0; i < 300; i++)
        {
            var (name, raw) = seeds[i % seeds.Count];
            byte[] mutated = (byte[])raw.Clone();
            for (int flips = rng.Next(1, 4); flips > 0; flips--) mutated[rng.Next(mutated.Length)] ^= (byte)(1 << rng.Next(8));
            if (rng.Next(4) == 0) mutated = mutated[..rng.Next(mutated.Length)];
            AssertSame(mutated, new PprofImportOptions(), $"{name} mutation {i}");
        }
    }

    [Fact]
    public void RandomProfilesDecodeTheSameBothWays()
    {
        var rng = new Random(2026);
        int failed = 0, succeeded = 0;
        for (int i = 0; i < 600; i++)
        {
            byte[] raw = RandomPprof.Build(rng, broken: i % 2 == 1);
            PprofImportOptions options = i % 3 == 0 ? new PprofImportOptions() : TightLimits(rng);
            AssertSame(raw, options, $"random profile {i}");
            if (Outcome(raw, options, join: true).Contains("error at")) failed++;
            else succeeded++;
        }
        // Both outcomes are exercised, each often.
        Assert.True(failed > 60 && succeeded > 60, $"{failed} refused, {succeeded} read");
    }

    private sealed class RecordingSink : IPprofSampleSink
    {
        public StringBuilder Text { get; } = new();
        public int Count { get; private set; }

        public void Begin(PprofProfileInfo info) => Text.Append(string.Join(",", info.SampleTypes)).Append('\n');

        public void Sample(ReadOnlySpan<byte> stack, ReadOnlySpan<long> values)
        {
            Count++;
            Text.Append(Encoding.UTF8.GetString(stack)).Append(" = ").AppendJoin(",", values.ToArray()).Append('\n');
        }
    }
}
