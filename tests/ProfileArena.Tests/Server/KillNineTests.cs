using System.Net;

namespace ProfileArena.Tests.Server;

/// <summary>
/// Durability through kill -9: the built server runs as a child process; two writers ingest unique stacks
/// with acknowledgements; the process is SIGKILLed at a random instant; after the restart every
/// acknowledged stack is present with exactly its value.
/// </summary>
/// <remarks>
/// Precisely what may differ: each writer sends one request at a time, so when the process dies each
/// writer has at most one request whose outcome it did not learn (sent, no reply). That request may or
/// may not have been made durable before the kill: after the restart its stack is either absent or
/// present with exactly its value (never twice: each stack is sent once). Whichever it is must then hold
/// forever (present stays present, absent never appears later). Every request after the first failure
/// is not sent. No other stack may appear. Iterations: PA_KILL_ITERATIONS (default 3), each bounded
/// in requests (400 per writer) and time.
/// </remarks>
public class KillNineTests
{
    private sealed record Sent(string Series, string Stack, ulong Value);

    [Fact]
    public async Task AcknowledgedIngestsSurviveKillNine()
    {
        int iterations = int.TryParse(Environment.GetEnvironmentVariable("PA_KILL_ITERATIONS"), out int n) && n > 0 ? n : 3;
        string dir = Path.Combine(Path.GetTempPath(), "pa-kill9-" + Guid.NewGuid().ToString("N"));
        var random = new Random(9);
        var durable = new Dictionary<(string Series, string Stack), ulong>();
        var neverStored = new HashSet<(string, string)>();
        string[] series = ["kill.cpu{writer=w0}", "kill.cpu{writer=w1}"];
        try
        {
            for (int iteration = 0; iteration <= iterations; iteration++)
            {
                using ChildServer server = await ChildServer.Start(dir, "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Information", "--Storage:ShardCount=2");
                await CheckState(server, durable, neverStored, series);
                Console.Error.WriteLine($"kill -9: after restart {iteration}: {durable.Count} stacks durable and exact, {neverStored.Count} in-flight stacks absent (never acknowledged)");
                if (iteration == iterations) break;

                long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
                var acknowledged = new List<Sent>[series.Length];
                var uncertain = new Sent?[series.Length];
                int acks = 0;
                Task[] writers = [.. Enumerable.Range(0, series.Length).Select(w => Task.Run(async () =>
                {
                    acknowledged[w] = [];
                    for (int r = 0; r < 400; r++)
                    {
                        var sent = new Sent(series[w], $"main;it{iteration};w{w};req{r}", (ulong)(r % 7 + 1));
                        try
                        {
                            using var response = await Api.IngestFolded(server.Client, sent.Series, $"{sent.Stack} {sent.Value}\n", now - 5, now - 5);
                            if (response.StatusCode != HttpStatusCode.OK)
                                throw new InvalidOperationException($"ingest answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
                            acknowledged[w].Add(sent);
                            Interlocked.Increment(ref acks);
                        }
                        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                        {
                            uncertain[w] = sent; // sent, but no acknowledgement: the process died
                            return;
                        }
                    }
                }))];
                // The kill lands at a random instant once writes flow (the first ones pay the child's JIT).
                for (int wait = 0; Volatile.Read(ref acks) == 0 && wait < 1000; wait++) await Task.Delay(10, TestContext.Current.CancellationToken);
                await Task.Delay(random.Next(0, 600), TestContext.Current.CancellationToken);
                server.Kill();
                await Task.WhenAll(writers);

                for (int w = 0; w < series.Length; w++)
                {
                    foreach (Sent s in acknowledged[w]) durable[(s.Series, s.Stack)] = s.Value;
                    if (uncertain[w] is Sent u) _pending.Add(u);
                }
                Assert.True(acknowledged.Sum(a => a.Count) > 0, "no request was acknowledged before the kill");
                Console.Error.WriteLine($"kill -9 iteration {iteration}: {acknowledged.Sum(a => a.Count)} acknowledged, {uncertain.Count(u => u is not null)} in flight at the kill");
            }
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    private readonly List<Sent> _pending = [];

    private async Task CheckState(ChildServer server, Dictionary<(string, string), ulong> durable, HashSet<(string, string)> neverStored, string[] series)
    {
        var present = new Dictionary<(string, string), ulong>();
        foreach (string s in series)
        {
            string selector = "kill.cpu{writer=\"" + s[(s.IndexOf('=') + 1)..^1] + "\"}";
            foreach (var (stack, value) in await Api.Stacks(server.Client, selector))
                present[(s, stack)] = value;
        }
        // The requests whose fate was unknown: absent, or present exactly once; from now on it stays so.
        foreach (Sent u in _pending)
        {
            if (present.TryGetValue((u.Series, u.Stack), out ulong v))
            {
                Assert.Equal(u.Value, v);
                durable[(u.Series, u.Stack)] = v;
            }
            else
            {
                neverStored.Add((u.Series, u.Stack));
            }
        }
        _pending.Clear();
        foreach (var (key, value) in durable)
        {
            Assert.True(present.TryGetValue(key, out ulong v), $"acknowledged {key} lost after kill -9\n{server.Output}");
            Assert.Equal(value, v);
        }
        foreach (var key in present.Keys)
            Assert.True(durable.ContainsKey(key), $"{key} present but never acknowledged (or reappeared after being absent)");
        Assert.DoesNotContain(present.Keys, neverStored.Contains);
    }
}
