using System.Diagnostics;
using System.Net;
using ProfileArena.Tests.Server.Storage;

namespace ProfileArena.Tests.Server.Faults;

/// <summary>
/// kill -9 in a loop during load (issue 12): four connections push concurrently, the server is SIGKILLed at a
/// random instant, restarted on the same data directory, and what it holds is compared push by push with what
/// the clients saw acknowledged (<see cref="PushLedger"/>): every acknowledged push present exactly, nothing
/// duplicated or partial; a push in flight at a kill is stored exactly or absent, and stays so at every later
/// restart (the ledger's stability check). Both engines. CI runs 3 rounds (PA_FAULT_ROUNDS / PA_FAULT_SECONDS for
/// longer runs). (This replaces the earlier two-writer KillNineTests, whose in-flight check the ledger now makes.)
/// </summary>
public sealed class KillNineLoopTests
{
    [Theory]
    [InlineData("arena")]
    [InlineData("baseline")]
    public async Task Acknowledged_pushes_survive_kill_9_during_concurrent_load_exactly(string engine)
    {
        using var dir = new TempDataDir();
        var ledger = new PushLedger();
        var random = new Random(engine.Length * 7919);
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var clock = Stopwatch.StartNew();
        int rounds = 0;
        for (; rounds < FaultBudget.Rounds && clock.Elapsed < FaultBudget.Deadline; rounds++)
        {
            using ChildServer server = await ChildServer.Start(dir.Path, "--storage", engine, "--Storage:SnapshotIntervalSeconds=1");
            await ledger.Verify(server.Client, $"{engine}, after restart {rounds}");
            int before = ledger.Acknowledged;
            using var stop = new CancellationTokenSource();
            Task[] pushers = [.. Enumerable.Range(0, 4).Select(p => Task.Run(async () =>
            {
                var r = new Random(rounds * 31 + p);
                using var client = new HttpClient { BaseAddress = new Uri(server.Url), Timeout = TimeSpan.FromSeconds(20) };
                for (int n = 0; n < 5000 && !stop.IsCancellationRequested; n++)
                {
                    HttpStatusCode status = await ledger.Push(client, r, now - r.Next(3 * 3600));
                    if (status == 0) return; // the server is gone
                    Assert.True(status == HttpStatusCode.OK, $"push refused with {(int)status}");
                }
            }))];
            // Load for a while (snapshots every second retire the WAL under load, so kills also land mid-snapshot).
            await Task.Delay(random.Next(800, 2500), TestContext.Current.CancellationToken);
            server.Kill();
            stop.Cancel();
            await Task.WhenAll(pushers);
            Assert.True(ledger.Acknowledged > before, $"round {rounds}: no push was acknowledged before the kill");
        }
        using (ChildServer last = await ChildServer.Start(dir.Path, "--storage", engine))
            await ledger.Verify(last.Client, $"{engine}, after the last kill");
        Assert.True(rounds >= 1);
        var (stored, absent) = ledger.Settled;
        Console.Error.WriteLine($"kill -9 loop ({engine}): {rounds} kills, {ledger.Acknowledged} pushes acknowledged, of {stored + absent} in flight or refused {stored} stored and {absent} absent, each the same after every later restart");
    }
}
