using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using ProfileArena.Server.Hosting;
using ProfileArena.Server.Storage;
using ProfileArena.Tests.Server.Storage;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Server;

/// <summary>
/// <c>--storage arena</c> against <c>--storage baseline</c> (issue 12): the same ingests, over real HTTP on
/// loopback, into two servers that differ only in where trees live must give byte-identical /render answers
/// (JSON flamebearer and collapsed), before and after a restart (the Baseline snapshot goes through the
/// arena's snapshot format and back).
/// </summary>
public sealed class StorageEngineDifferentialTests
{
    [Fact]
    public async Task Same_ingests_render_identically_in_arena_and_baseline_servers_and_after_restart()
    {
        string[] folded = [.. new[]
        {
            "collapsed/FlameGraph/perf-java-stacks-01-collapsed-all.txt",
            "collapsed/FlameGraph/perf-iperf-stacks-pidtid-01-collapsed-tid.txt",
            "collapsed/FlameGraph/perf-numa-stacks-01-collapsed-tid.txt",
        }.Select(Data)];
        string[] pprof = [.. new[] { "pprof/google-pprof/sample.cpu", "pprof/go-torch/pprof.1.pb.gz", "pprof/speedscope/simple.prof" }.Select(Data)];
        var random = new Random(12);
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var pushes = new List<(string Query, byte[] Body)>();
        for (int i = 0; i < 60; i++)
        {
            string app = $"svc{random.Next(3)}";
            string labels = $"{{env={(random.Next(2) == 0 ? "prod" : "dev")},zone=z{random.Next(2)}}}";
            long from = now - random.Next(3 * 3600);
            byte[] body;
            string format;
            if (random.Next(3) == 0)
            {
                body = File.ReadAllBytes(pprof[random.Next(pprof.Length)]);
                format = "&format=pprof";
            }
            else
            {
                // A random subset of a real folded file's lines, some frames renamed (new nodes), values scaled.
                string[] lines = File.ReadAllLines(folded[random.Next(folded.Length)]);
                var sb = new StringBuilder();
                foreach (string line in lines)
                {
                    int space = line.LastIndexOf(' ');
                    if (space <= 0 || random.Next(2) == 0 || !ulong.TryParse(line.AsSpan(space + 1), out ulong value)) continue;
                    string stack = line[..space];
                    if (random.Next(4) == 0) stack = stack.Replace(";", $";r{random.Next(5)}_", StringComparison.Ordinal);
                    sb.Append(stack).Append(' ').Append(value * (ulong)(1 + random.Next(3))).Append('\n');
                }
                body = Encoding.UTF8.GetBytes(sb.ToString());
                format = "";
            }
            pushes.Add(($"/ingest?name={Uri.EscapeDataString(app + labels)}&from={from}&until={from + 10}{format}", body));
        }

        using var arenaDir = new TempDataDir();
        using var baselineDir = new TempDataDir();
        List<string> before;
        await using (var arena = await TestServer.Start(arenaDir.Path, "arena"))
        await using (var baseline = await TestServer.Start(baselineDir.Path, "baseline"))
        {
            foreach (var (query, body) in pushes)
            {
                Assert.Equal(HttpStatusCode.OK, (await arena.Post(query, body)).StatusCode);
                Assert.Equal(HttpStatusCode.OK, (await baseline.Post(query, body)).StatusCode);
            }
            before = await Renders(arena, now);
            Assert.Equal(before, await Renders(baseline, now));
            Assert.True(arena.Storage.Stats().Nodes > 1000);
            Assert.Equal(arena.Storage.Stats().Nodes, baseline.Storage.Stats().Nodes);
            Assert.Equal(arena.Storage.Stats().Trees, baseline.Storage.Stats().Trees);
        }
        // Stop snapshotted both; restart loads the snapshots (the Baseline one through the arena format).
        await using (var arena = await TestServer.Start(arenaDir.Path, "arena"))
        await using (var baseline = await TestServer.Start(baselineDir.Path, "baseline"))
        {
            Assert.Equal(before, await Renders(arena, now));
            Assert.Equal(before, await Renders(baseline, now));
        }
        // A Baseline snapshot is an arena snapshot: the arena server reads the Baseline server's data directory.
        await using (var crossed = await TestServer.Start(baselineDir.Path, "arena"))
            Assert.Equal(before, await Renders(crossed, now));
    }

    /// <summary>Every series name, each rendered over the last 1 h, 6 h and 24 h as JSON and collapsed, and
    /// one selector with a label matcher.</summary>
    private static async Task<List<string>> Renders(TestServer server, long now)
    {
        HttpResponseMessage names = await server.Get($"/label-values?label=__name__&from={now - 86400}&until={now + 60}");
        Assert.Equal(HttpStatusCode.OK, names.StatusCode);
        string[] series = JsonSerializer.Deserialize<string[]>(await names.Content.ReadAsStringAsync()) ?? [];
        Assert.NotEmpty(series);
        var answers = new List<string>();
        int nonEmpty = 0;
        foreach (string name in series.Order(StringComparer.Ordinal))
        {
            foreach (string selector in new[] { name + "{}", name + "{env=\"prod\",zone!=\"z1\"}" })
            {
                foreach (long range in new long[] { 3600, 6 * 3600, 86400 })
                {
                    foreach (string format in new[] { "json", "collapsed" })
                    {
                        HttpResponseMessage r = await server.Get($"/render?query={Uri.EscapeDataString(selector)}&from={now - range}&until={now + 60}&format={format}");
                        string text = await r.Content.ReadAsStringAsync();
                        Assert.True(r.StatusCode == HttpStatusCode.OK, $"{selector} {range}: {(int)r.StatusCode} {text}");
                        if (format == "collapsed" && text.Length > 0) nonEmpty++;
                        answers.Add($"{selector} {range} {format}\n{text}");
                    }
                }
            }
        }
        Assert.True(nonEmpty > series.Length, "most renders must carry data");
        return answers;
    }

    private static string Data(string relative)
    {
        string path = Path.Combine(SharedData.TestData, relative);
        Assert.True(File.Exists(path), $"shared test data missing: {path}");
        return path;
    }

    /// <summary>An in-process server on a free loopback port over one data directory with the chosen engine.</summary>
    private sealed class TestServer : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly HttpClient _http;

        private TestServer(WebApplication app, string url)
        {
            _app = app;
            _http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(60) };
        }

        public IProfileStorage Storage => (IProfileStorage)_app.Services.GetService(typeof(IProfileStorage))!;

        public static async Task<TestServer> Start(string dataDir, string engine)
        {
            WebApplication app = ServerApp.Build(["--urls", "http://127.0.0.1:0", "--data-dir", dataDir, "--storage", engine, "--Logging:LogLevel:Default=Warning"],
                (services, configuration) => services.AddProfileStorage(configuration));
            await app.StartAsync();
            var server = new TestServer(app, ServerApp.Addresses(app)[0]);
            for (int i = 0; i < 600 && !server.Storage.IsReady; i++) await Task.Delay(50); // bounded: 30 s
            Assert.True(server.Storage.IsReady, "storage did not become ready within 30 s");
            return server;
        }

        public Task<HttpResponseMessage> Post(string pathAndQuery, byte[] body) => _http.PostAsync(pathAndQuery, new ByteArrayContent(body));

        public Task<HttpResponseMessage> Get(string pathAndQuery) => _http.GetAsync(pathAndQuery);

        public async ValueTask DisposeAsync()
        {
            _http.Dispose();
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
