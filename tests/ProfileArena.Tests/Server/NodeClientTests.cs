using System.Diagnostics;
using System.Net;
using System.Text.Json;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Server;

/// <summary>
/// The real pyroscope client for Node.js (npm @pyroscope/nodejs, installed by `npm ci` in tests/clients/node
/// from the committed lock; .ci/run does it) profiles itself for a few seconds and stops (which flushes):
/// the program's own function names must arrive with non-zero values. 0.6.x posts raw gzipped pprof with
/// format=pprof; 0.4.x (npm alias pyroscope-04) posts a multipart form without format.
/// </summary>
public class NodeClientTests
{
    private static string ClientDir => Path.Combine(SharedData.RepoRoot, "tests", "clients", "node");

    [Theory]
    [InlineData("0.6", null)]
    [InlineData("0.4", null)]
    [InlineData("0.6", "node-tenant-key")]
    public async Task RealNodeClientProfilesArrive(string client, string? key)
    {
        string node = ServerEndpointTests.FindOnPath("node")
            ?? throw new InvalidOperationException("node is not installed (.ci/run installs nodejs and npm with apt-get)");
        if (!Directory.Exists(Path.Combine(ClientDir, "node_modules", "@pyroscope", "nodejs")) || !Directory.Exists(Path.Combine(ClientDir, "node_modules", "pyroscope-04")))
            throw new InvalidOperationException($"run `npm ci` in {ClientDir} first (.ci/run does)");
        await using var server = key is null ? await InProcessServer.Start() : await InProcessServer.Start($"--Auth:Tenants:nodeteam={key}");
        string app = "nodetest" + client.Replace(".", "");
        var info = new ProcessStartInfo(node, ["profile-self.js", server.Url, app, client, "3", .. key is null ? Array.Empty<string>() : [key]])
        {
            WorkingDirectory = ClientDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["DEBUG"] = "pyroscope"; // the client logs rejected uploads
        using var process = Process.Start(info)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        Task<string> stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        bool exited = process.WaitForExit(120_000);
        if (!exited) process.Kill(entireProcessTree: true);
        string output = await stdout + await stderr;
        Assert.True(exited && process.ExitCode == 0, $"node client failed:\n{output}");
        Assert.DoesNotContain("rejected", output);

        string? auth = key is null ? null : "Bearer " + key;
        string[] names = (await Api.GetJson(server.Client, "/label-values?label=__name__", auth)).EnumerateArray().Select(e => e.GetString()!).ToArray();
        Assert.Contains($"{app}.cpu", names);
        Assert.Contains($"{app}.wall", names);
        string[] labelValues = (await Api.GetJson(server.Client, $"/label-values?label=client&query={app}.cpu", auth)).EnumerateArray().Select(e => e.GetString()!).ToArray();
        Assert.Equal([client], labelValues);

        JsonElement render = await Api.GetJson(server.Client, $"/render?query={Uri.EscapeDataString(app + ".cpu{test=\"node-client\"}")}&from=now-10m&until=now", auth);
        var nodes = Api.Flamebearer(render);
        foreach (string function in new[] { "arenaBusyOuterLoop", "arenaBusyMiddleSorting" })
        {
            var hits = nodes.Where(kv => kv.Key[(kv.Key.LastIndexOf(';') + 1)..].Contains(function, StringComparison.Ordinal)).ToList();
            Assert.True(hits.Count > 0, $"{function} missing from {app}.cpu: {string.Join(", ", nodes.Keys.Take(30))}");
            Assert.True(hits.Sum(kv => (double)kv.Value.Total) > 0, $"{function} has no samples");
        }
        Assert.True(render.GetProperty("flamebearer").GetProperty("numTicks").GetUInt64() > 0);
        Assert.Equal("nodespy", render.GetProperty("metadata").GetProperty("spyName").GetString());
        JsonElement top = await Api.GetJson(server.Client, $"/api/top?query={app}.cpu&from=now-10m&until=now&n=50&by=total", auth);
        Assert.Contains(top.GetProperty("functions").EnumerateArray(), f => f.GetProperty("name").GetString()!.Contains("arenaBusyOuterLoop") && f.GetProperty("total").GetUInt64() > 0);
        if (key is not null)
        {
            var (status, _) = await Api.Get(server.Client, $"/render?query={app}.cpu", null);
            Assert.Equal(HttpStatusCode.Unauthorized, status);
        }
    }
}
