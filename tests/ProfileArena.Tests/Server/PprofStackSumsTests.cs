using System.Text;
using ProfileArena.Formats;
using ProfileArena.Server.Hosting;
using ProfileArena.Server.Http;
using ProfileArena.Server.Ingest;
using ProfileArena.Server.Storage;
using ProfileArena.Tests.Formats;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Server;

/// <summary>
/// <see cref="PprofStackSums"/> against the staging trees it replaced (the reference model below: one
/// <see cref="TreeStore"/> of MaxNodes with a tree per sample type, every non-zero value inserted, the trees' nodes with
/// a self value read back): the same stacks with the same sums per sample type, or the same refusal — a negative value
/// and a sum past 2^64 − 1 (status and message), more than MaxNodes nodes (the store's message, with its numbers) — over
/// every real pprof file, random profiles, and node limits from 1 to past the profile's node count.
/// </summary>
public class PprofStackSumsTests
{
    /// <summary>The previous decoder's sink, verbatim in what it checks and says.</summary>
    private sealed class ReferenceTrees(TreeStore staging) : IPprofSampleSink
    {
        public IReadOnlyList<PprofValueType> Types { get; private set; } = [];
        public List<ProfileTree> Trees { get; } = [];
        private long _sample;

        public void Begin(PprofProfileInfo info)
        {
            Types = info.SampleTypes;
            foreach (var _ in info.SampleTypes) Trees.Add(staging.CreateTree());
        }

        public void Sample(ReadOnlySpan<byte> stack, ReadOnlySpan<long> values)
        {
            _sample++;
            for (int i = 0; i < values.Length && i < Trees.Count; i++)
            {
                long v = values[i];
                if (v < 0) throw RequestException.BadRequest($"profile (pprof): sample {_sample} has a negative {Types[i]} value ({v}); diff profiles are not accepted");
                if (v == 0) continue;
                try
                {
                    Trees[i].Insert(stack, (ulong)v);
                }
                catch (OverflowException)
                {
                    throw RequestException.BadRequest($"profile (pprof): the {Types[i]} values add up past 2^64 − 1 at sample {_sample}");
                }
            }
        }
    }

    /// <summary>Per sample type "type/unit: stack=sum …" sorted, or the refusal as "kind status: message".</summary>
    private static string Reference(byte[] raw, long maxNodes, out long nodes)
    {
        nodes = -1;
        using var staging = new TreeStore(new TreeStoreOptions { MaxNodes = maxNodes });
        var sink = new ReferenceTrees(staging);
        try
        {
            PprofFormat.ReadInPlace(raw, sink);
        }
        catch (Exception e) when (e is ProfileFormatException or RequestException or StoreLimitExceededException)
        {
            return Refusal(e);
        }
        nodes = staging.NodeCount;
        var text = new StringBuilder();
        for (int i = 0; i < sink.Trees.Count; i++)
        {
            var sums = new List<string>();
            sink.Trees[i].Iterate((stack, self, _) =>
            {
                if (self > 0) sums.Add($"{Encoding.UTF8.GetString(stack)}={self}");
            });
            Describe(text, sink.Types[i], sums, sums.Count);
        }
        return text.ToString();
    }

    private static string Subject(byte[] raw, long maxNodes)
    {
        using var sink = new PprofStackSums(maxNodes);
        try
        {
            PprofFormat.ReadInPlace(raw, sink);
        }
        catch (Exception e) when (e is ProfileFormatException or RequestException or StoreLimitExceededException)
        {
            return Refusal(e);
        }
        var text = new StringBuilder();
        foreach (var (type, stacks) in sink.TakeSeries())
        {
            using (stacks)
            {
                var sums = new List<string>();
                ulong total = 0;
                for (int i = 0; i < stacks.Count; i++)
                {
                    sums.Add($"{Encoding.UTF8.GetString(stacks.Stack(i))}={stacks.Value(i)}");
                    total += stacks.Value(i);
                }
                Assert.Equal(total, stacks.Total);
                Describe(text, type, sums, sums.Distinct().Count()); // each stack once
            }
        }
        return text.ToString();
    }

    private static void Describe(StringBuilder text, PprofValueType type, List<string> sums, int distinct)
    {
        sums.Sort(StringComparer.Ordinal);
        text.Append($"{type} ({distinct} stacks): ").AppendJoin(" | ", sums).Append('\n');
    }

    private static string Refusal(Exception e) => e switch
    {
        RequestException r => $"request {r.Status}: {r.Message}",
        ProfileFormatException f => $"format at {f.ByteOffset}: {f.Reason}",
        _ => $"{e.GetType().Name}: {e.Message}",
    };

    private static void AssertSame(byte[] raw, long maxNodes, string what)
    {
        string expected = Reference(raw, maxNodes, out _), actual = Subject(raw, maxNodes);
        if (expected != actual) Assert.Fail($"{what}, MaxNodes {maxNodes}:\n reference: {Excerpt(expected)}\n sums:      {Excerpt(actual)}");
    }

    private static string Excerpt(string s) => s.Length <= 1500 ? s : s[..700] + " … " + s[^700..];

    [Fact]
    public void RealFilesGiveTheTreesStacksAndRefusals()
    {
        var rng = new Random(5);
        foreach (string path in SharedData.Files("pprof"))
        {
            byte[] raw = HostileInputTests.Gunzip(File.ReadAllBytes(path));
            string name = SharedData.Relative(path);
            Reference(raw, long.MaxValue, out long nodes);
            AssertSame(raw, long.MaxValue, name);
            if (nodes < 0) continue; // refused whatever the limit: compared above
            // At the limit, one under it (refused at the sample that passes it), and anywhere below, down to the roots.
            foreach (long limit in new[] { nodes, nodes - 1, 1, 2, rng.NextInt64(1, nodes + 1), rng.NextInt64(1, nodes + 1) })
                AssertSame(raw, limit, name);
        }
    }

    [Fact]
    public void RandomProfilesGiveTheTreesStacksAndRefusals()
    {
        var rng = new Random(99);
        int refusedForNodes = 0, stored = 0;
        for (int i = 0; i < 800; i++)
        {
            byte[] raw = RandomPprof.Build(rng, broken: i % 4 == 3);
            Reference(raw, long.MaxValue, out long nodes);
            long limit = nodes < 0 || i % 3 == 0 ? long.MaxValue : rng.NextInt64(1, nodes + 3);
            string expected = Reference(raw, limit, out _);
            if (expected.Contains("Store limit")) refusedForNodes++;
            else if (!expected.StartsWith("request", StringComparison.Ordinal) && !expected.StartsWith("format", StringComparison.Ordinal)) stored++;
            AssertSame(raw, limit, $"random profile {i}");
        }
        Assert.True(refusedForNodes > 50 && stored > 50, $"{refusedForNodes} refused for nodes, {stored} stored");
    }

    [Fact]
    public void TheDecoderAnswers413AtTheNodeLimitWithTheStoresNumbers()
    {
        byte[] body = File.ReadAllBytes(Path.Combine(SharedData.TestData, "pprof/google-pprof/large.cpu"));
        byte[] raw = HostileInputTests.Gunzip(body);
        Reference(raw, long.MaxValue, out long nodes);
        Assert.True(nodes > 1000, $"{nodes} nodes");
        IngestParameters p = new(IngestName.Parse("app", new ServerOptions()), 100, 110, SeriesMetadata.Default, "pprof");

        var fits = new IngestDecoder(new ServerOptions { MaxNodesPerRequest = nodes }).Decode("t", p, null, body);
        Assert.NotEmpty(fits);
        foreach (IngestProfile profile in fits) profile.Stacks.Dispose();

        string expected = Reference(raw, nodes - 1, out _);
        var e = Assert.Throws<RequestException>(() => new IngestDecoder(new ServerOptions { MaxNodesPerRequest = nodes - 1 }).Decode("t", p, null, body));
        Assert.Equal(413, e.Status);
        Assert.Equal($"body: the profile has more than {nodes - 1} distinct call-tree nodes (Server:MaxNodesPerRequest): {expected["StoreLimitExceededException: ".Length..]}", e.Message);
    }
}
