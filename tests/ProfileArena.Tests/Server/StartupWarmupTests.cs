using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using ProfileArena.Server.Hosting;
using ProfileArena.Server.Storage;

namespace ProfileArena.Tests.Server;

/// <summary><c>Server:WarmupSeconds</c> (<see cref="StartupWarmup"/>): the server says ready only once its warm-up has
/// ended, the warm-up really ran the ingest and render paths, and it leaves nothing behind — no series in the server's
/// storage, no scratch directory. (The rest of the suite starts its servers without it: <c>TestEnvironment</c>.)</summary>
/// <remarks>Run alone (<see cref="ProcessGcFigures"/>): a warm-up allocates hundreds of MB and forces a full collection,
/// which moved another test's process-wide heap readings (SoakTests' band) in a clean-clone CI run.</remarks>
[Collection(nameof(ProcessGcFigures))]
public class StartupWarmupTests
{
    private static string[] LeftoverScratch() =>
        Directory.GetDirectories(Path.GetTempPath(), $"profilearena-warmup-{Environment.ProcessId}-*");

    [Fact]
    public async Task The_server_is_ready_only_after_its_warm_up_which_leaves_no_data_behind()
    {
        string dataDir = Path.Combine(Path.GetTempPath(), "pa-server-" + Guid.NewGuid().ToString("N"));
        WebApplication app = ServerApp.Build(["--urls", "http://127.0.0.1:0", "--data-dir", dataDir, "--Logging:LogLevel:Default", "Warning", "--Server:WarmupSeconds=8"],
            (services, configuration) => services.AddProfileStorage(configuration));
        await app.StartAsync(TestContext.Current.CancellationToken);
        try
        {
            var warmup = app.Services.GetRequiredService<StartupWarmup>();
            using var client = new HttpClient { BaseAddress = new Uri(ServerApp.Addresses(app).Single()) };
            var said = new List<string>();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (true)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "not ready within 60 s: " + string.Join(" | ", said.Distinct()));
                bool doneBefore = warmup.Done.IsCompleted;
                using HttpResponseMessage r = await client.GetAsync("/readyz", TestContext.Current.CancellationToken);
                string text = await r.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
                if (r.StatusCode == HttpStatusCode.OK)
                {
                    Assert.True(warmup.Done.IsCompleted, "ready before the warm-up ended");
                    break;
                }
                Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
                said.Add(text.Trim());
                // Not ready although the warm-up had ended before the question: only storage may still be opening.
                if (doneBefore) Assert.Contains("replaying", text, StringComparison.Ordinal);
                await Task.Delay(20, TestContext.Current.CancellationToken);
            }
            Assert.Contains("not ready: warming up (Server:WarmupSeconds)", said); // it did wait for the warm-up
            WarmupOutcome outcome = await warmup.Done;
            Assert.True(outcome.Rounds >= 1, "no warm-up round ran");
            Assert.True(outcome.Elapsed < TimeSpan.FromSeconds(8 + 20), $"the warm-up overran its budget: {outcome.Elapsed}");

            // Nothing of the warm-up is in the server's storage, and its scratch directory is gone.
            var storage = app.Services.GetRequiredService<IProfileStorage>();
            Assert.Empty(storage.Series("anonymous", null, 0, 10_000_000_000));
            Assert.Empty(storage.Series("warmup", null, 0, 10_000_000_000));
            Assert.Equal(0, storage.Stats().Trees);
            Assert.Empty(LeftoverScratch());
        }
        finally
        {
            await app.StopAsync(TestContext.Current.CancellationToken);
            await app.DisposeAsync();
            try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task A_warm_up_runs_rounds_within_its_budget_and_removes_its_scratch_storage()
    {
        WarmupOutcome outcome = await StartupWarmup.RunAsync(new ServerOptions(), StartupWarmup.ScratchOptions(null), TimeSpan.FromSeconds(3), TestContext.Current.CancellationToken);
        Assert.True(outcome.Rounds >= 1);
        Assert.True(outcome.Trees >= 4 * (outcome.Rounds + 5), $"{outcome.Trees} trees after {outcome.Rounds} rounds"); // 6 levels
        // Ends when the JIT has been quiet for a while or at the budget (plus the round under way and the cleanup).
        Assert.True(outcome.Quiet || outcome.Elapsed >= TimeSpan.FromSeconds(3));
        Assert.True(outcome.Elapsed < TimeSpan.FromSeconds(3 + 20), $"{outcome.Elapsed}");
        Assert.Empty(LeftoverScratch());
    }

    [Fact]
    public async Task The_scratch_storage_runs_the_servers_engine_and_levels_elsewhere()
    {
        var section = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Storage:Engine"] = "baseline", ["Storage:Levels"] = "3", ["Storage:LevelRetentionSeconds:0"] = "120",
            ["Storage:DataDir"] = "/the/servers/own/data", ["Storage:ShardCount"] = "16", ["Storage:MaxNativeBytes"] = "1000000",
        }).Build().GetSection(StorageOptions.Section);
        StorageOptions scratch = StartupWarmup.ScratchOptions(section);
        Assert.Equal(("baseline", 3, 120L), (scratch.Engine, scratch.Levels, scratch.LevelRetentionSeconds[0]));
        Assert.StartsWith(Path.Combine(Path.GetTempPath(), $"profilearena-warmup-{Environment.ProcessId}-"), scratch.DataDir);
        Assert.Equal((2, 0L, StorageOptions.LocalMedium), (scratch.ShardCount, scratch.MaxNativeBytes, scratch.Medium));
        // The Baseline engine warms up too, and its pushes are kept by a 120 s level 0 (they go forward in time).
        WarmupOutcome outcome = await StartupWarmup.RunAsync(new ServerOptions(), scratch, TimeSpan.FromSeconds(2), TestContext.Current.CancellationToken);
        Assert.True(outcome.Rounds >= 1);
        // Every round's four series open a bucket at each of the 3 levels (coarser ones shared by later rounds).
        Assert.True(outcome.Trees >= 4 * (outcome.Rounds + 2), $"{outcome.Trees} trees after {outcome.Rounds} rounds");
        Assert.Empty(LeftoverScratch());
    }

    [Fact]
    public void A_warm_up_push_is_a_real_pprof_profile_of_its_stacks()
    {
        byte[] body = StartupWarmup.SyntheticPush(7);
        Assert.Equal(new byte[] { 0x1f, 0x8b }, body[..2]); // gzipped, as agents send it
        var decoder = new ProfileArena.Server.Ingest.IngestDecoder(new ServerOptions());
        var query = new Microsoft.AspNetCore.Http.QueryCollection(new Dictionary<string, Microsoft.Extensions.Primitives.StringValues>
        {
            ["name"] = "w", ["from"] = "1700000000", ["until"] = "1700000010", ["format"] = "pprof",
        });
        var parameters = ProfileArena.Server.Ingest.IngestParameters.Parse(query, new ServerOptions(), DateTimeOffset.UtcNow);
        List<IngestProfile> profiles = decoder.Decode("t", parameters, "application/octet-stream", body);
        try
        {
            IngestProfile cpu = Assert.Single(profiles);
            Assert.Equal("w.cpu", cpu.Series.Name);
            Assert.InRange(cpu.Stacks.Count, 300, 400); // 400 drawn stacks, repeats merged
        }
        finally
        {
            foreach (IngestProfile p in profiles) p.Stacks.Dispose();
        }
    }

    [Fact]
    public void Out_of_range_settings_are_refused_with_their_name()
    {
        foreach (string bad in new[] { "-1", "601" })
        {
            var e = Assert.Throws<ArgumentException>(() => ServerApp.Build(["--urls", "http://127.0.0.1:0", "--Server:WarmupSeconds=" + bad], (_, _) => { }));
            Assert.Contains("Server:WarmupSeconds", e.Message);
        }
    }
}
