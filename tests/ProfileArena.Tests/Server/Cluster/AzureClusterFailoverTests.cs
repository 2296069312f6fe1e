using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using ProfileArena.Tests.Server.Media;
using ProfileArena.Tests.Server.Storage;

namespace ProfileArena.Tests.Server.Cluster;

/// <summary>
/// Three real silo processes (<c>dotnet ProfileArena.Server.dll</c>, each with its own scratch data directory) form one
/// cluster with <c>Cluster:Mode=AzureStorage</c> (membership in Azurite's table service) and keep their shards on
/// <c>Storage:Medium=AzureBlob</c> (the same Azurite), with the test membership timeouts README "Running a cluster"
/// gives. Every push writes stacks of its own (<c>main;s{series};p{push}</c>), so the ledger checks each push:
/// acknowledged ones present with their exact value, refused ones absent, those whose answer was lost (timeout,
/// connection cut) present exactly or not at all — never twice.
/// </summary>
[Trait("Category", "Slow")] // three server processes and Azurite
public sealed class AzureClusterFailoverTests(AzuriteFixture azurite, ITestOutputHelper log)
{
    private const int SeriesCount = 3;

    /// <summary>Membership timeouts for tests (README "Running a cluster"): a stopped silo is suspected after 3 missed
    /// 1 s probes, the table is re-read every 2 s. Calls to a silo that does not answer fail after 5 s (503).</summary>
    private static readonly string[] TestTimeouts =
    [
        "--Cluster:ProbeTimeoutSeconds", "1", "--Cluster:NumMissedProbesLimit", "3", "--Cluster:DeathVoteExpirationSeconds", "30",
        "--Cluster:IAmAliveTablePublishSeconds", "5", "--Cluster:TableRefreshSeconds", "2",
        "--Cluster:CallTimeoutSeconds", "5", "--Cluster:PreparedTimeoutSeconds", "15",
    ];

    private readonly Dictionary<string, ulong>[] _acked = [.. Enumerable.Range(0, SeriesCount).Select(_ => new Dictionary<string, ulong>(StringComparer.Ordinal))];
    private readonly Dictionary<string, ulong>[] _unknown = [.. Enumerable.Range(0, SeriesCount).Select(_ => new Dictionary<string, ulong>(StringComparer.Ordinal))];
    private readonly HashSet<string>[] _refused = [.. Enumerable.Range(0, SeriesCount).Select(_ => new HashSet<string>(StringComparer.Ordinal))];
    private readonly long _from = DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 600;
    private int _pushes;

    [Fact]
    public async Task KilledAndPausedSilosLoseNoAcknowledgedSampleAndTheWokenSiloStoresNothing()
    {
        CancellationToken cancel = TestContext.Current.CancellationToken;
        var total = Stopwatch.StartNew();
        string connection = await azurite.ConnectionStringAsync();
        string container = (await azurite.NewContainerAsync()).Name;
        string clusterId = "t" + Guid.NewGuid().ToString("N")[..12];
        var dirs = Enumerable.Range(0, 3).Select(_ => new TempDataDir()).ToArray();
        var silos = new ChildServer[3];
        try
        {
            // One shard per tenant, so the silo hosting "the shard" is the one whose /metrics counts a shard.
            ChildServer[] started = await Task.WhenAll(dirs.Select(d => ChildServer.Start(d.Path,
            [
                "--Cluster:Mode", "AzureStorage", "--Cluster:ConnectionString", connection, "--Cluster:ClusterId", clusterId,
                "--Cluster:SiloPort", Port(), "--Cluster:GatewayPort", Port(), .. TestTimeouts,
                "--Storage:Medium", "AzureBlob", "--Storage:BlobConnectionString", connection, "--Storage:BlobContainer", container,
                "--Storage:ShardCount", "1", "--Storage:SnapshotIntervalSeconds", "2", "--Logging:LogLevel:Orleans", "Warning",
            ])));
            started.CopyTo(silos, 0);
            log.WriteLine($"3 silos up in {total.Elapsed.TotalSeconds:F1} s (load average {LoadAverage()})");

            // --- kill -9 of the silo hosting the shard ---
            for (int i = 0; i < 12; i++) await PushUntilAcked(silos[0], i % SeriesCount, TimeSpan.FromSeconds(30));
            ChildServer host = await HostOfTheShard(silos);
            ChildServer survivor = silos.First(s => s != host);
            host.Kill();
            var failover = Stopwatch.StartNew();
            int unanswered = 0;
            while (true)
            {
                Assert.True(failover.Elapsed < TimeSpan.FromSeconds(45), $"no answer through a surviving silo 45 s after kill -9 ({unanswered} refused)");
                var (status, body) = await Render(survivor, 0, cancel);
                if (status == HttpStatusCode.OK)
                {
                    // The first answer is already the whole shard: a shard that does not answer fails the query (503).
                    AssertSeriesMatchesLedger(0, Parse(body));
                    break;
                }
                Assert.True(status is HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout or 0, $"render during failover: {(int)status} {body}");
                unanswered++;
                await Task.Delay(100, cancel);
            }
            double failoverSeconds = failover.Elapsed.TotalSeconds;
            log.WriteLine($"kill -9 → first correct render through another silo: {failoverSeconds:F2} s ({unanswered} refused before; load average {LoadAverage()})");
            await AssertEveryServerMatchesLedger(silos.Where(s => s != host));

            // --- SIGSTOP of the silo hosting the shard now, a write through the third one, SIGCONT ---
            for (int i = 0; i < 6; i++) await PushUntilAcked(survivor, i % SeriesCount, TimeSpan.FromSeconds(30));
            ChildServer paused = await HostOfTheShard(silos.Where(s => s != host).ToArray());
            ChildServer other = silos.Single(s => s != host && s != paused);
            Signal(paused, "STOP");
            var stopped = Stopwatch.StartNew();
            // Sent while it is stopped: the kernel accepts the connection, the silo reads the request when it wakes,
            // before it knows it was declared dead.
            (int Series, string Stack, ulong Value) staleWrite = NextPush(1);
            Task<(HttpStatusCode Status, string Body)> stale = TryPush(paused, staleWrite, TimeSpan.FromSeconds(60));
            await PushUntilAcked(other, 2, TimeSpan.FromSeconds(60));
            log.WriteLine($"SIGSTOP → first write acknowledged through another silo: {stopped.Elapsed.TotalSeconds:F2} s");
            await PushUntilAcked(other, 0, TimeSpan.FromSeconds(30));
            Signal(paused, "CONT");
            var (staleStatus, staleBody) = await stale.WaitAsync(TimeSpan.FromSeconds(70), cancel);
            Record(staleWrite, staleStatus);
            // Its own snapshot timer (2 s) and a second write after waking, if it is still up.
            await Task.Delay(3000, cancel);
            HttpStatusCode secondStatus = 0;
            if (!paused.HasExited)
            {
                (int, string, ulong) second = NextPush(0);
                (secondStatus, _) = await TryPush(paused, second, TimeSpan.FromSeconds(30));
                Record(second, secondStatus);
            }
            for (int i = 0; i < 20 && !paused.HasExited; i++) await Task.Delay(500, cancel);
            string fenceLines = string.Join(" | ", paused.Output.Split('\n')
                .Where(l => Regex.IsMatch(l, "fenc|dead|lease|FailFast|fatal", RegexOptions.IgnoreCase)).Take(6).Select(l => l.Trim()[..Math.Min(l.Trim().Length, 240)]));
            log.WriteLine($"woken silo: write sent while stopped → {Describe(staleStatus)} {staleBody.Trim()}, a write after waking → {(secondStatus == 0 ? "not tried (process gone)" : Describe(secondStatus))}; " +
                          $"process {(paused.HasExited ? $"exited with code {paused.ExitCode}" : "still running")}; its log: {fenceLines}");
            // A fenced outcome: the woken silo refused (503), or shut itself down, or (routed to the new activation) stored it
            // durably, or could not learn the outcome in time (504; then the ledger's check decides: stored once or absent).
            Assert.True(staleStatus is HttpStatusCode.ServiceUnavailable or HttpStatusCode.OK or HttpStatusCode.GatewayTimeout or 0, $"write to the woken silo: {Describe(staleStatus)}");

            await PushUntilAcked(other, 1, TimeSpan.FromSeconds(30));
            await AssertEveryServerMatchesLedger([other]);
            log.WriteLine($"pushes {_pushes}: acknowledged {_acked.Sum(a => a.Count)}, refused {_refused.Sum(r => r.Count)}, unknown outcome {_unknown.Sum(u => u.Count)}; test took {total.Elapsed.TotalSeconds:F1} s");
        }
        catch
        {
            foreach (ChildServer? s in silos)
            {
                if (s is not null) log.WriteLine($"--- silo {s.Url} output (tail) ---\n{Tail(s.Output, 4000)}");
            }
            throw;
        }
        finally
        {
            foreach (ChildServer? s in silos)
            {
                if (s is null) continue;
                if (!s.HasExited) Signal(s, "CONT");
                s.Dispose();
            }
            foreach (TempDataDir d in dirs) d.Dispose();
        }
    }

    private (int Series, string Stack, ulong Value) NextPush(int series)
    {
        int n = _pushes++;
        return (series, $"main;s{series};p{n}", (ulong)(n * 7 % 31 + 1));
    }

    private static string Name(int series) => $"failover.cpu{{n=s{series}}}";

    private static string Query(int series) => $"failover.cpu{{n=\"s{series}\"}}";

    /// <summary>One push; its status and body, or 0 when no answer came (timeout, connection cut).</summary>
    private async Task<(HttpStatusCode Status, string Body)> TryPush(ChildServer silo, (int Series, string Stack, ulong Value) push, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/ingest?name={Uri.EscapeDataString(Name(push.Series))}&from={_from}&until={_from + 10}")
        {
            Content = new StringContent($"{push.Stack} {push.Value}\n", System.Text.Encoding.UTF8, "application/x-www-form-urlencoded"),
        };
        try
        {
            using HttpResponseMessage response = await silo.Client.SendAsync(request, cts.Token);
            return (response.StatusCode, await response.Content.ReadAsStringAsync(cts.Token));
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
        {
            return (0, e.GetType().Name + ": " + e.Message);
        }
    }

    private void Record((int Series, string Stack, ulong Value) push, HttpStatusCode status)
    {
        if (status == HttpStatusCode.OK) _acked[push.Series][push.Stack] = push.Value;
        // No answer, or 504: the server itself could not learn the outcome (its call to the shard timed out).
        else if (status is 0 or HttpStatusCode.GatewayTimeout) _unknown[push.Series][push.Stack] = push.Value;
        else _refused[push.Series].Add(push.Stack);
    }

    /// <summary>Pushes new stacks until one is acknowledged; the others go to the refused or unknown ledgers.</summary>
    private async Task PushUntilAcked(ChildServer silo, int series, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        for (int attempt = 0; attempt < 200; attempt++)
        {
            Assert.True(clock.Elapsed < limit, $"no push acknowledged through {silo.Url} within {limit.TotalSeconds} s");
            var push = NextPush(series);
            var (status, _) = await TryPush(silo, push, TimeSpan.FromSeconds(20));
            Record(push, status);
            if (status == HttpStatusCode.OK) return;
            // During a failover: 503 (shard unreachable or fenced: nothing stored), 504 (no answer in time: unknown), never anything else.
            Assert.True(status is HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout or 0, $"push through {silo.Url}: {(int)status}");
            await Task.Delay(100);
        }
        Assert.Fail($"no push acknowledged through {silo.Url} in 200 attempts");
    }

    private static async Task<(HttpStatusCode, string)> Render(ChildServer silo, int series, CancellationToken cancel)
    {
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            cts.CancelAfter(TimeSpan.FromSeconds(20));
            using HttpResponseMessage r = await silo.Client.GetAsync($"/render?query={Uri.EscapeDataString(Query(series))}&from=0&until=now%2B1d&format=collapsed", cts.Token);
            return (r.StatusCode, await r.Content.ReadAsStringAsync(cts.Token));
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !cancel.IsCancellationRequested)
        {
            return (0, e.Message);
        }
    }

    private static Dictionary<string, ulong> Parse(string collapsed)
    {
        var stacks = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (string line in collapsed.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int space = line.LastIndexOf(' ');
            stacks.Add(line[..space], ulong.Parse(line[(space + 1)..], CultureInfo.InvariantCulture));
        }
        return stacks;
    }

    /// <summary>Acknowledged stacks exactly, refused ones absent, unknown ones exactly or absent, nothing else; the
    /// series total equals the acknowledged total plus the unknown pushes that landed.</summary>
    private void AssertSeriesMatchesLedger(int series, Dictionary<string, ulong> stored)
    {
        foreach (var (stack, value) in _acked[series])
        {
            Assert.True(stored.TryGetValue(stack, out ulong got) && got == value, $"acknowledged {stack} {value}: stored {(stored.TryGetValue(stack, out ulong g) ? g.ToString(CultureInfo.InvariantCulture) : "nothing")}");
        }
        foreach (var (stack, value) in stored)
        {
            if (_acked[series].ContainsKey(stack)) continue;
            Assert.False(_refused[series].Contains(stack), $"refused push {stack} was stored ({value})");
            Assert.True(_unknown[series].TryGetValue(stack, out ulong sent), $"stored {stack} {value} was never pushed");
            Assert.True(sent == value, $"push {stack} of {sent} whose answer was lost is stored as {value} (duplicated?)");
        }
        ulong ledger = _acked[series].Values.Aggregate(0UL, (a, b) => a + b);
        ulong landed = stored.Where(kv => !_acked[series].ContainsKey(kv.Key)).Aggregate(0UL, (a, kv) => a + kv.Value);
        Assert.Equal(ledger + landed, stored.Values.Aggregate(0UL, (a, b) => a + b));
    }

    private async Task AssertEveryServerMatchesLedger(IEnumerable<ChildServer> servers)
    {
        foreach (ChildServer s in servers)
        {
            for (int series = 0; series < SeriesCount; series++)
            {
                var (status, body) = await Render(s, series, TestContext.Current.CancellationToken);
                Assert.True(status == HttpStatusCode.OK, $"render s{series} through {s.Url}: {(int)status} {body}");
                AssertSeriesMatchesLedger(series, Parse(body));
            }
        }
    }

    /// <summary>The one silo whose /metrics counts an active shard (the tenant has one shard).</summary>
    private static async Task<ChildServer> HostOfTheShard(ChildServer[] silos)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var hosts = new List<ChildServer>();
            foreach (ChildServer s in silos.Where(s => !s.HasExited))
            {
                string metrics = await s.Client.GetStringAsync("/metrics");
                Match m = Regex.Match(metrics, @"^profilearena_storage_shards (\d+)$", RegexOptions.Multiline);
                if (m.Success && m.Groups[1].Value != "0") hosts.Add(s);
            }
            if (hosts.Count == 1) return hosts[0];
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"{hosts.Count} silos report the shard active");
            await Task.Delay(200);
        }
    }

    private static void Signal(ChildServer silo, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-" + signal, silo.ProcessId.ToString(CultureInfo.InvariantCulture) }, UseShellExecute = false })!;
        kill.WaitForExit(10_000);
    }

    private static string Describe(HttpStatusCode status) => status == 0 ? "no answer (connection cut or timeout)" : $"{(int)status}";

    private static string Port() => ProfileArena.Processes.RedisProcess.FreeLoopbackPort().ToString(CultureInfo.InvariantCulture);

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";

    private static string Tail(string text, int chars) => text.Length <= chars ? text : text[^chars..];
}
