using System.Globalization;
using System.Net;
using ProfileArena.Tests.Server.Storage;

namespace ProfileArena.Tests.Server.Faults;

/// <summary>
/// The native-memory budget reached during concurrent load (issue 12): ingest is refused with 429 and a message
/// naming the budget, the stores stay within it (/metrics), queries answer with exactly what was acknowledged,
/// and that survives a restart. Both engines: the arena counts its native bytes against Storage:MaxNativeBytes,
/// Baseline (trees on the managed heap) an estimate of its managed bytes (nodes × bytes per node); /metrics shows
/// the counted figure as profilearena_storage_budget_bytes.
/// </summary>
public sealed class MemoryBudgetTests
{
    [Theory]
    [InlineData("arena")]
    [InlineData("baseline")]
    public async Task Budget_reached_under_load_refuses_ingest_cleanly_keeps_queries_and_stays_within_budget(string engine)
    {
        const long budget = 24L << 20;
        using var dir = new TempDataDir();
        var ledger = new PushLedger();
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        using (ChildServer server = await ChildServer.Start(dir.Path, "--storage", engine, $"--Storage:MaxNativeBytes={budget}", "--Storage:ShardCount=2"))
        {
            int refused = 0;
            string? message = null;
            Task[] pushers = [.. Enumerable.Range(0, 4).Select(p => Task.Run(async () =>
            {
                var random = new Random(p);
                using var client = new HttpClient { BaseAddress = new Uri(server.Url), Timeout = TimeSpan.FromSeconds(30) };
                for (int n = 0; n < 4000 && Volatile.Read(ref refused) < 40; n++)
                {
                    var (id, body) = ledger.Next(random, 200, renameLeaves: true);
                    using HttpResponseMessage r = await Api.IngestFolded(client, PushLedger.Series + "{test=faults}", body, now - random.Next(24 * 3600), now);
                    if (r.IsSuccessStatusCode)
                    {
                        ledger.Acknowledge(id);
                        continue;
                    }
                    Assert.True(r.StatusCode == HttpStatusCode.TooManyRequests, $"over budget answered {(int)r.StatusCode}: {await r.Content.ReadAsStringAsync()}");
                    message ??= await r.Content.ReadAsStringAsync();
                    Interlocked.Increment(ref refused);
                    // Queries still answer while ingest is refused.
                    var (status, text) = await Api.Get(client, $"/render?query={Uri.EscapeDataString(PushLedger.Series + "{}")}&from=now-1h&until=now&format=json");
                    Assert.True(status == HttpStatusCode.OK, $"render at the budget: {(int)status} {text}");
                }
            }))];
            await Task.WhenAll(pushers);
            Assert.True(refused > 0, "the budget was never reached");
            Assert.Contains("Storage:MaxNativeBytes", message, StringComparison.Ordinal);
            var metrics = await Api.Get(server.Client, "/metrics");
            long counted = (long)Gauge(metrics, "profilearena_storage_budget_bytes");
            long native = (long)Gauge(metrics, "profilearena_storage_native_bytes");
            Assert.True(counted > 0 && counted <= budget, $"{engine}: bytes counted against the budget {counted:N0} past the budget {budget:N0}");
            // Counted: the stores' bytes and the query merge cache's (its entries are arena stores for both engines).
            long cache = (long)Gauge(metrics, "profilearena_merge_cache_bytes");
            if (engine == "arena") Assert.Equal(native + cache, counted);
            else Assert.Equal(0, native);
            await ledger.Verify(server.Client, $"{engine} at the budget");
            server.Kill();
        }
        using (ChildServer restarted = await ChildServer.Start(dir.Path, "--storage", engine, $"--Storage:MaxNativeBytes={budget}", "--Storage:ShardCount=2"))
            await ledger.Verify(restarted.Client, $"{engine} after restart at the budget");
    }

    private static double Gauge((HttpStatusCode Status, string Body) metrics, string name)
    {
        Assert.Equal(HttpStatusCode.OK, metrics.Status);
        string line = metrics.Body.Split('\n').Single(l => l.StartsWith(name + " ", StringComparison.Ordinal));
        return double.Parse(line[(name.Length + 1)..], CultureInfo.InvariantCulture);
    }
}
