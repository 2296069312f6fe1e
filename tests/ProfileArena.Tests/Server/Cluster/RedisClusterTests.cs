using System.Net;
using ProfileArena.Processes;
using ProfileArena.Tests.Server.Storage;

namespace ProfileArena.Tests.Server.Cluster;

/// <summary>Two real servers (ServerApp, as Program.cs builds it) with <c>Cluster:Mode=Redis</c> form one
/// cluster through Debian's redis-server and serve the HTTP API together: writes through one, reads through
/// the other, the same bytes as a single-node server given the same requests.</summary>
public sealed class RedisClusterTests
{
    [Fact]
    public async Task TwoSilosWithRedisMembershipServeIngestAndRender()
    {
        using RedisProcess redis = await RedisProcess.StartAsync(logFile: null, TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        using var shared = new TempDataDir();
        string clusterId = "test-" + Guid.NewGuid().ToString("N")[..8];
        string[] Silo() =>
        [
            "--Cluster:Mode", "Redis", "--Cluster:ConnectionString", redis.ConnectionString, "--Cluster:ClusterId", clusterId,
            "--Cluster:SiloPort", RedisProcess.FreeLoopbackPort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--Cluster:GatewayPort", RedisProcess.FreeLoopbackPort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--Storage:ShardCount", "4",
        ];
        await using InProcessServer a = await InProcessServer.StartIn(shared.Path, Silo());
        await using InProcessServer b = await InProcessServer.StartIn(shared.Path, Silo());
        await using InProcessServer single = await InProcessServer.Start("--Storage:ShardCount", "4");

        const long from = 1_795_950_000;
        string[] apps = ["api", "db", "web", "queue", "auth", "mail"]; // several shards
        var random = new Random(4);
        for (int i = 0; i < 24; i++)
        {
            string app = apps[i % apps.Length];
            string body = string.Join('\n', Enumerable.Range(0, 5).Select(_ => $"main;{app};f{random.Next(8)};g{random.Next(4)} {random.Next(1, 500)}")) + "\n";
            string url = $"/ingest?name={app}.cpu%7Benv%3Dprod%7D&from={from + 10 * (i % 5)}&until={from + 10 * (i % 5) + 10}";
            foreach (InProcessServer server in new[] { i % 2 == 0 ? a : b, single })
            {
                using var response = await server.Client.PostAsync(url, new StringContent(body), TestContext.Current.CancellationToken);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        }
        foreach (string app in apps.Append("missing"))
        {
            string render = $"/render?query={app}.cpu%7Benv%3D%22prod%22%7D&from={from}&until={from + 60}&format=json";
            string expected = await single.Client.GetStringAsync(render, TestContext.Current.CancellationToken);
            Assert.Equal(expected, await a.Client.GetStringAsync(render, TestContext.Current.CancellationToken));
            Assert.Equal(expected, await b.Client.GetStringAsync(render, TestContext.Current.CancellationToken));
            if (app != "missing") Assert.Contains($"\"{app}\"", expected, StringComparison.Ordinal);
        }
        // One cluster, not two: every written shard is active on exactly one of the two silos (two separate
        // clusters would each hold their own copy of the shards they were written or read through).
        int written = Directory.GetDirectories(shared.Path, "shard-*", SearchOption.AllDirectories).Length;
        Assert.True(written >= 2, $"{written} shards written");
        Assert.Equal(written, await ActiveShards(a) + await ActiveShards(b));
        string labels = $"/label-values?label=__name__&from={from}&until={from + 60}";
        Assert.Equal(await single.Client.GetStringAsync(labels, TestContext.Current.CancellationToken), await b.Client.GetStringAsync(labels, TestContext.Current.CancellationToken));
    }

    /// <summary>The silo's own active shards, from its /metrics.</summary>
    private static async Task<int> ActiveShards(InProcessServer server)
    {
        string metrics = await server.Client.GetStringAsync("/metrics", TestContext.Current.CancellationToken);
        string line = metrics.Split('\n').Single(l => l.StartsWith("profilearena_storage_shards ", StringComparison.Ordinal));
        return int.Parse(line["profilearena_storage_shards ".Length..], System.Globalization.CultureInfo.InvariantCulture);
    }
}
