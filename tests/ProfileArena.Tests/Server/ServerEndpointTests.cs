using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using ProfileArena.Formats;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Server;

/// <summary>Every endpoint on a real Kestrel loopback port, against what was ingested.</summary>
public class ServerEndpointTests
{
    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    private static Dictionary<string, ulong> RandomStacks(Random random, int lines, string prefix)
    {
        var stacks = new Dictionary<string, ulong>(StringComparer.Ordinal);
        for (int i = 0; i < lines; i++)
        {
            string stack = prefix + ";" + string.Join(";", Enumerable.Range(0, random.Next(1, 5)).Select(_ => "fn" + random.Next(6)));
            stacks[stack] = stacks.GetValueOrDefault(stack) + (ulong)random.Next(1, 100);
        }
        return stacks;
    }

    private static string Folded(Dictionary<string, ulong> stacks) => string.Concat(stacks.Select(kv => $"{kv.Key} {kv.Value}\n"));

    /// <summary>The tree the stacks make: path → (self, total), the reference for decoded flamebearers.</summary>
    private static Dictionary<string, (ulong Self, ulong Total)> Reference(IEnumerable<Dictionary<string, ulong>> parts)
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        foreach (var part in parts)
            foreach (var (stack, value) in part) tree.Insert(stack, value);
        var nodes = new Dictionary<string, (ulong, ulong)>(StringComparer.Ordinal);
        tree.Iterate((stack, self, total) => nodes[Encoding.UTF8.GetString(stack)] = (self, total));
        return nodes;
    }

    [Fact]
    public async Task IngestThenRenderMergesEveryMatchingSeries()
    {
        await using var server = await InProcessServer.Start();
        var random = new Random(1);
        long t = Now - 600;
        var prod = RandomStacks(random, 50, "main");
        var staging = RandomStacks(random, 50, "main");
        var other = RandomStacks(random, 20, "other_app");
        Assert.Equal(HttpStatusCode.OK, (await Api.IngestFolded(server.Client, "shop.cpu{env=prod,region=eu}", Folded(prod), t, t + 10)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Api.IngestFolded(server.Client, "shop.cpu{env=staging,region=us}", Folded(staging), t + 20, t + 30, path: "/pyroscope/ingest")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Api.IngestFolded(server.Client, "other.cpu{env=prod}", Folded(other), t, t + 10)).StatusCode);

        // Both shop series merge; the other app stays out.
        JsonElement both = await Api.GetJson(server.Client, $"/render?query={Uri.EscapeDataString("shop.cpu{}")}&from={t - 100}&until={t + 100}&format=json");
        Assert.Equal(Reference([prod, staging]), Api.Flamebearer(both));
        ulong expectedTotal = prod.Values.Concat(staging.Values).Aggregate(0UL, (a, v) => a + v);
        Assert.Equal(expectedTotal, both.GetProperty("flamebearer").GetProperty("numTicks").GetUInt64());
        Assert.Equal(1, both.GetProperty("version").GetInt32());
        JsonElement metadata = both.GetProperty("metadata");
        Assert.Equal(("single", "shop.cpu", "samples", 100u, "unknown"), (metadata.GetProperty("format").GetString(), metadata.GetProperty("name").GetString(),
            metadata.GetProperty("units").GetString(), metadata.GetProperty("sampleRate").GetUInt32(), metadata.GetProperty("spyName").GetString()));
        JsonElement timeline = both.GetProperty("timeline");
        Assert.Equal((long)expectedTotal, timeline.GetProperty("samples").EnumerateArray().Sum(e => e.GetInt64()));
        Assert.True(timeline.GetProperty("durationDelta").GetInt64() > 0);

        // Matchers: =, !=, =~, !~; the name alias and the /pyroscope prefix; max-nodes.
        foreach (string q in new[] { "shop.cpu{env=\"prod\"}", "shop.cpu{env!=\"staging\"}", "shop.cpu{region=~\"e.*\"}", "shop.cpu{region!~\"u.*\"}" })
            Assert.Equal(Reference([prod]), Api.Flamebearer(await Api.GetJson(server.Client, $"/render?query={Uri.EscapeDataString(q)}&from={t - 100}&until={t + 100}")));
        JsonElement aliased = await Api.GetJson(server.Client, $"/pyroscope/render?name={Uri.EscapeDataString("shop.cpu{env=\"staging\"}")}&from={t - 100}&until=now");
        Assert.Equal(Reference([staging]), Api.Flamebearer(aliased));
        JsonElement small = await Api.GetJson(server.Client, $"/render?query=shop.cpu&from={t - 100}&until={t + 100}&max-nodes=5");
        var folded = Api.Flamebearer(small);
        Assert.True(folded.Count < Reference([prod, staging]).Count);
        Assert.Contains(folded.Keys, k => k.EndsWith("other", StringComparison.Ordinal));
        Assert.Equal(expectedTotal, small.GetProperty("flamebearer").GetProperty("numTicks").GetUInt64());

        // Time range: only the first ingest is in [t, t+10].
        Assert.Equal(Reference([prod]), Api.Flamebearer(await Api.GetJson(server.Client, $"/render?query=shop.cpu&from={t}&until={t + 9}")));
        // Nothing matches: an empty profile, not an error.
        JsonElement none = await Api.GetJson(server.Client, "/render?query=nothing.cpu&from=now-1h&until=now");
        Assert.Equal(0UL, none.GetProperty("flamebearer").GetProperty("numTicks").GetUInt64());
    }

    [Fact]
    public async Task RenderDiffIsDoubleFormat()
    {
        await using var server = await InProcessServer.Start();
        var random = new Random(2);
        long t = Now - 3000;
        var before = RandomStacks(random, 30, "main");
        var after = RandomStacks(random, 30, "main");
        await Api.IngestFolded(server.Client, "svc.cpu", Folded(before), t, t + 10);
        await Api.IngestFolded(server.Client, "svc.cpu", Folded(after), t + 1000, t + 1010);
        JsonElement diff = await Api.GetJson(server.Client,
            $"/render-diff?leftQuery=svc.cpu&leftFrom={t}&leftUntil={t + 100}&rightQuery=svc.cpu&rightFrom={t + 1000}&rightUntil={t + 1100}&maxNodes=0");
        ulong left = before.Values.Aggregate(0UL, (a, v) => a + v), right = after.Values.Aggregate(0UL, (a, v) => a + v);
        Assert.Equal("double", diff.GetProperty("metadata").GetProperty("format").GetString());
        Assert.Equal((left, right, left + right), (diff.GetProperty("leftTicks").GetUInt64(), diff.GetProperty("rightTicks").GetUInt64(),
            diff.GetProperty("flamebearer").GetProperty("numTicks").GetUInt64()));
        foreach (JsonElement level in diff.GetProperty("flamebearer").GetProperty("levels").EnumerateArray())
            Assert.Equal(0, level.GetArrayLength() % 7);
        var (status, body) = await Api.Get(server.Client, "/render-diff?leftQuery=svc.cpu");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("rightQuery", body);
    }

    [Fact]
    public async Task LabelNamesAndValues()
    {
        await using var server = await InProcessServer.Start();
        long t = Now - 60;
        await Api.IngestFolded(server.Client, "a.cpu{env=prod,zone=z1}", "x 1", t, t);
        await Api.IngestFolded(server.Client, "a.cpu{env=dev}", "x 1", t, t);
        await Api.IngestFolded(server.Client, "b.wall{team=core}", "x 1", t, t);
        string[] Strings(JsonElement e) => e.EnumerateArray().Select(v => v.GetString()!).ToArray();
        Assert.Equal(["a.cpu", "b.wall"], Strings(await Api.GetJson(server.Client, "/label-values?label=__name__")));
        Assert.Equal(["__name__", "env", "team", "zone"], Strings(await Api.GetJson(server.Client, "/label-names")));
        Assert.Equal(["dev", "prod"], Strings(await Api.GetJson(server.Client, "/pyroscope/label-values?label=env")));
        Assert.Equal(["prod"], Strings(await Api.GetJson(server.Client, $"/label-values?label=env&query={Uri.EscapeDataString("{zone=\"z1\"}")}")));
        Assert.Equal(["__name__", "team"], Strings(await Api.GetJson(server.Client, $"/label-names?query=b.wall")));
        Assert.Empty(Strings(await Api.GetJson(server.Client, $"/label-values?label=env&from={t - 1000}&until={t - 500}")));
        Assert.Equal(HttpStatusCode.BadRequest, (await Api.Get(server.Client, "/label-values")).Status);
    }

    [Fact]
    public async Task TopFunctionsBySelfAndTotal()
    {
        await using var server = await InProcessServer.Start();
        var random = new Random(4);
        long t = Now - 60;
        var stacks = RandomStacks(random, 80, "main");
        await Api.IngestFolded(server.Client, "top.cpu", Folded(stacks), t, t);
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        foreach (var (s, v) in stacks) tree.Insert(s, v);
        foreach (var (by, order) in new[] { ("self", TopBy.Self), ("total", TopBy.Total) })
        {
            JsonElement top = await Api.GetJson(server.Client, $"/api/top?query=top.cpu&from={t - 10}&until={t + 10}&n=4&by={by}");
            var expected = FunctionTotals.Top(tree, 4, order);
            Assert.Equal(expected.Select(f => (f.Name, f.Self, f.Total)),
                top.GetProperty("functions").EnumerateArray().Select(f => (f.GetProperty("name").GetString()!, f.GetProperty("self").GetUInt64(), f.GetProperty("total").GetUInt64())));
            Assert.Equal(tree.Total, top.GetProperty("total").GetUInt64());
        }
        Assert.Equal(HttpStatusCode.BadRequest, (await Api.Get(server.Client, "/api/top?query=top.cpu&by=name")).Status);
    }

    [Fact]
    public async Task PprofOutIsReadByGoToolPprof()
    {
        await using var server = await InProcessServer.Start();
        long t = Now - 60;
        await Api.IngestFolded(server.Client, "gp.cpu", "main;alpha 700\nmain;beta 300\nmain 5\n", t, t);
        var (status, _) = await Api.Get(server.Client, $"/api/pprof?query=gp.cpu&from={t - 10}&until={t + 10}");
        Assert.Equal(HttpStatusCode.OK, status);
        // Our own reader reads it back exactly.
        byte[] bytes = await server.Client.GetByteArrayAsync($"/api/pprof?query=gp.cpu&from={t - 10}&until={t + 10}", TestContext.Current.CancellationToken);
        using (var store = new TreeStore())
        {
            ProfileTree back = store.CreateTree();
            PprofFormat.Import(new MemoryStream(bytes), back);
            Assert.Equal(1005UL, back.Total);
        }
        string? go = FindOnPath("go");
        if (go is null) Assert.Skip("go is not installed (Debian golang-go has go tool pprof; .ci/run installs it): go tool pprof not run");
        string tmp = Path.Combine(Path.GetTempPath(), "pa-pprof-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(tmp);
        try
        {
            var info = new ProcessStartInfo(go, ["tool", "pprof", "-top", $"{server.Url}/api/pprof?query=gp.cpu&from={t - 10}&until={t + 10}"])
            { RedirectStandardOutput = true, RedirectStandardError = true };
            info.Environment["PPROF_TMPDIR"] = tmp;
            info.Environment["HOME"] = tmp;
            using var process = Process.Start(info)!;
            Task<string> stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken), stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            Assert.True(process.WaitForExit(120_000), "go tool pprof did not finish in 120 s");
            string output = await stdout + await stderr;
            Assert.True(process.ExitCode == 0, output);
            Assert.Matches(@"(?m)^\s*700\s+69\.65%.*\balpha$", output);
            Assert.Matches(@"(?m)^\s*300\s+29\.85%.*\bbeta$", output);
            Assert.Matches(@"(?m)^\s*5\s+0\.5%.*\s1005\s+100%\s+main$", output);
        }
        finally
        {
            Directory.Delete(tmp, recursive: true);
        }
    }

    internal static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    [Fact]
    public async Task HealthReadinessAndMetrics()
    {
        await using var server = await InProcessServer.Start();
        Assert.Equal((HttpStatusCode.OK, "ok\n"), await Api.Get(server.Client, "/healthz"));
        Assert.Equal((HttpStatusCode.OK, "ready\n"), await Api.Get(server.Client, "/readyz"));
        long t = Now;
        await Api.IngestFolded(server.Client, "m.cpu", "a;b 3\na;c 4\n", t, t);
        await Api.IngestFolded(server.Client, "m.cpu", "bad line\n", t, t);
        await Api.Get(server.Client, "/render?query=m.cpu");
        var (status, text) = await Api.Get(server.Client, "/metrics");
        Assert.Equal(HttpStatusCode.OK, status);
        double Value(string series) => double.Parse(text.Split('\n').Single(l => l.StartsWith(series + " ", StringComparison.Ordinal))[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(1, Value("profilearena_ingest_requests_total{format=\"folded\",outcome=\"stored\"}"));
        Assert.Equal(1, Value("profilearena_ingest_requests_total{format=\"folded\",outcome=\"rejected\"}"));
        Assert.Equal(2, Value("profilearena_ingest_stacks_total"));
        Assert.True(Value("profilearena_ingest_bytes_total") >= 18);
        Assert.Equal(2, Value("profilearena_ingest_duration_seconds_count"));
        Assert.Equal(1, Value("profilearena_storage_series"));
        Assert.True(Value("profilearena_storage_trees") >= 1);
        Assert.True(Value("profilearena_storage_nodes") >= 3);
        Assert.True(Value("profilearena_storage_native_bytes") > 0);
        Assert.Equal(1, Value("profilearena_storage_ready"));
        Assert.Equal(1, Value("profilearena_query_requests_total{endpoint=\"render\",status=\"200\"}"));
        Assert.Contains("profilearena_gc_pause_seconds_total ", text);
        Assert.Contains("profilearena_gc_collections{generation=\"2\"}", text);
        Assert.Contains("dotnet_collection_count_total{generation=\"0\"}", text);
    }

    /// <summary>/render says where its time went (QueryTiming): a Server-Timing header with the merge and each storage
    /// phase, the merge cache's work (the first render builds its entries, the same render again hits them and merges
    /// nothing stored), and a /metrics histogram observed once per render and phase.</summary>
    [Fact]
    public async Task RenderAnswersWhereItsTimeWent()
    {
        await using var server = await InProcessServer.Start();
        long t = Now / 10 * 10 - 1200;
        foreach (string name in new[] { "w.cpu{pod=a}", "w.cpu{pod=b}" })
        {
            for (long at = t - 50; at <= t; at += 10)
                Assert.Equal(HttpStatusCode.OK, (await Api.IngestFolded(server.Client, name, "main;work 3\nmain;idle 1\n", at, at)).StatusCode);
        }
        // The range ends 1,100 s after the data: a flame graph's sum reads the pieces ending in its last 20 s in place (no
        // cache entry), and with the range's end on a 1,000 s boundary that would be the block holding all the data.
        string path = $"/render?query=w.cpu&from={t - 2500}&until={t + 1105}&format=json";
        var answers = new List<Dictionary<string, string>>();
        for (int i = 0; i < 2; i++)
        {
            using HttpResponseMessage r = await server.Client.GetAsync(path, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.True(r.Headers.TryGetValues("Server-Timing", out IEnumerable<string>? values), "no Server-Timing header");
            // "name;dur=ms" and "cache;desc=\"…\"" entries, comma-separated over one or more header values
            var entries = new Dictionary<string, string>();
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(string.Join(", ", values), @"([\w-]+);(dur=[0-9.]+|desc=""[^""]*"")"))
                entries[m.Groups[1].Value] = m.Groups[2].Value;
            answers.Add(entries);
        }
        foreach (string phase in new[] { "merge", "truncate", "export", "storage-wait", "storage-collect", "storage-direct", "storage-extend", "storage-rebuild",
            "storage-newest", "storage-new", "storage-gate", "storage-copy", "storage-sum", "storage-uncached" })
        {
            Assert.True(answers[0].ContainsKey(phase), $"no {phase} in the first answer's Server-Timing");
            Assert.StartsWith("dur=", answers[1][phase], StringComparison.Ordinal);
        }
        // First: every group's entry is new (rebuilt, nothing hit); again with nothing written: every group hits.
        System.Text.RegularExpressions.Match first = System.Text.RegularExpressions.Regex.Match(answers[0]["cache"], @"hits (\d+), extended (\d+) .*rebuilt (\d+) \((\d+) trees");
        System.Text.RegularExpressions.Match again = System.Text.RegularExpressions.Regex.Match(answers[1]["cache"], @"hits (\d+), extended (\d+) .*rebuilt (\d+) \((\d+) trees");
        Assert.True(first.Success && again.Success, $"cache entries: {answers[0]["cache"]} / {answers[1]["cache"]}");
        int groups = int.Parse(first.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(groups >= 1, answers[0]["cache"]);
        Assert.Equal("0", first.Groups[1].Value);
        Assert.True(int.Parse(first.Groups[4].Value, System.Globalization.CultureInfo.InvariantCulture) >= 2, answers[0]["cache"]); // both series' trees
        Assert.Equal((groups.ToString(System.Globalization.CultureInfo.InvariantCulture), "0", "0", "0"), (again.Groups[1].Value, again.Groups[2].Value, again.Groups[3].Value, again.Groups[4].Value));

        var (status, text) = await Api.Get(server.Client, "/metrics");
        Assert.Equal(HttpStatusCode.OK, status);
        double Value(string series) => double.Parse(text.Split('\n').Single(l => l.StartsWith(series + " ", StringComparison.Ordinal))[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        foreach (string phase in new[] { "wait", "collect", "direct", "extend", "rebuild", "newest", "new", "gate", "copy", "sum", "uncached" })
            Assert.Equal(2, Value($"profilearena_query_storage_phase_seconds_count{{phase=\"{phase}\"}}"));
        Assert.True(Value("profilearena_query_cache_nodes_total{kind=\"copy\"}") > 0);
        Assert.Equal(Value("profilearena_merge_cache_hits_total"), groups);
    }

    [Fact]
    public async Task DataSurvivesAGracefulRestart()
    {
        string dir = Path.Combine(Path.GetTempPath(), "pa-server-" + Guid.NewGuid().ToString("N"));
        try
        {
            long t = Now - 30;
            await using (var first = await InProcessServer.StartIn(dir))
                Assert.Equal(HttpStatusCode.OK, (await Api.IngestFolded(first.Client, "r.cpu{k=v}", "a;b 5\na 2\n", t, t)).StatusCode);
            await using var second = await InProcessServer.StartIn(dir);
            Assert.Equal(new Dictionary<string, ulong> { ["a;b"] = 5, ["a"] = 2 }, await Api.Stacks(second.Client, "r.cpu"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void UnauthenticatedServerRefusesNonLoopbackAddresses()
    {
        var e = Assert.Throws<InvalidOperationException>(() => ProfileArena.Server.Hosting.ServerApp.Build(["--urls", "http://0.0.0.0:0"], (_, _) => { }));
        Assert.Contains("refusing to listen on http://0.0.0.0:0", e.Message);
        Assert.Contains("Server:AllowNonLoopback", e.Message);
        // Allowed when told so, or when tenants authenticate (built only: tests never bind outside loopback).
        ((IDisposable)ProfileArena.Server.Hosting.ServerApp.Build(["--urls", "http://0.0.0.0:0", "--Server:AllowNonLoopback=true"], (s, c) => ProfileArena.Server.Storage.StorageServiceCollectionExtensions.AddProfileStorage(s, c))).Dispose();
        ((IDisposable)ProfileArena.Server.Hosting.ServerApp.Build(["--urls", "http://0.0.0.0:0", "--Auth:Tenants:acme=secret"], (s, c) => ProfileArena.Server.Storage.StorageServiceCollectionExtensions.AddProfileStorage(s, c))).Dispose();
    }

    [Fact]
    public void ANegativeMallocArenaCountIsAConfigurationError()
    {
        var e = Assert.Throws<ArgumentException>(() => ProfileArena.Server.Hosting.ServerApp.Build(["--urls", "http://127.0.0.1:0", "--Server:MallocArenas=-1"], (_, _) => { }));
        Assert.Contains("Server:MallocArenas", e.Message);
    }
}
