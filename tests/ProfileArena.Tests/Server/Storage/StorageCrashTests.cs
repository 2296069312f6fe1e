using System.Diagnostics;
using ProfileArena.Server.Storage;
using ProfileArena.StorageCrashWorker;
using static ProfileArena.Tests.Server.Storage.StorageTestKit;

namespace ProfileArena.Tests.Server.Storage;

/// <summary>
/// A real child process (tests/ProfileArena.StorageCrashWorker) ingests with four concurrent writers and
/// snapshots now and then; the test kills it with SIGKILL after a random number of acknowledgements plus a
/// random delay, restarts the storage on the same directory and checks every call: acknowledged calls are
/// stored exactly; calls in flight at the kill are stored whole or not at all (a call spanning shards may be
/// partly stored only if it was never acknowledged: native-notes.md "Server storage"), and what one restart
/// shows, every later one shows too. Bounded: 6 rounds, each at most 200 acks and 60 s.
/// </summary>
public class StorageCrashTests
{
    private static readonly string[] Names = ["app.cpu", "app.alloc_space", "other.cpu"];

    [Fact]
    public async Task AcknowledgedCallsSurviveKillMinus9()
    {
        using var dir = new TempDataDir();
        var random = new Random(424242);
        var acked = new HashSet<long>();
        var fate = new Dictionary<(long Call, string Name), bool>(); // settled presence of in-flight calls
        long first = 0;
        for (int round = 0; round < 6; round++)
        {
            var (acks, started) = await RunAndKill(dir.Path, first, random.Next(5, 200), random.Next(0, 30));
            acked.UnionWith(acks);
            using (var storage = await OpenAsync(Options(dir.Path, shards: 4)))
            {
                foreach (string name in Names)
                {
                    var stacks = QueryStacks(storage, "crash", Selector(name), CrashWorkload.T0, CrashWorkload.T0 + 3700, out _);
                    var seen = new HashSet<long>();
                    for (long call = 0; call < first + started; call++)
                    {
                        if (!CrashWorkload.SeriesOf(call).Any(s => s.Name == name)) continue;
                        bool present = stacks.ContainsKey($"main;call_{call};f0");
                        if (present)
                        {
                            for (int i = 0; i < 3; i++) Assert.Equal((ulong)(call * 10 + i + 1), stacks.GetValueOrDefault($"main;call_{call};f{i}"));
                            seen.Add(call);
                        }
                        if (acked.Contains(call)) Assert.True(present, $"round {round}: acknowledged call {call} is missing from {name}");
                        else if (fate.TryGetValue((call, name), out bool before)) Assert.Equal(before, present);
                        else fate[(call, name)] = present;
                    }
                    Assert.Equal(seen.Count * 3, stacks.Count); // nothing else is stored
                }
                // A one-shard call in flight is stored in all its series or in none.
                foreach (var group in fate.GroupBy(f => f.Key.Call).Where(g => g.Key % 5 != 0))
                    Assert.True(group.All(f => f.Value) || group.All(f => !f.Value), $"call {group.Key} is partly stored");
            }
            first += started + 10;
        }
        Assert.True(acked.Count >= 6, $"{acked.Count} calls acknowledged in 6 rounds");
    }

    /// <summary>Runs the worker from call <paramref name="first"/>, kills it after <paramref name="acks"/>
    /// acknowledgements and <paramref name="delayMs"/>; returns the acknowledged calls and how many calls may have started.</summary>
    private static async Task<(List<long> Acks, long Started)> RunAndKill(string dataDir, long first, int acks, int delayMs)
    {
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "ProfileArena.StorageCrashWorker.exe" : "ProfileArena.StorageCrashWorker"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dataDir);
        start.ArgumentList.Add(first.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var process = Process.Start(start)!;
        var lines = new List<string>();
        var enough = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int count = 0;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data == null) return;
            lock (lines) lines.Add(e.Data);
            if (e.Data.StartsWith("ack ", StringComparison.Ordinal) && Interlocked.Increment(ref count) >= acks) enough.TrySetResult();
        };
        var errors = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (errors) errors.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        Task finished = await Task.WhenAny(enough.Task, process.WaitForExitAsync(TestContext.Current.CancellationToken), Task.Delay(60_000, TestContext.Current.CancellationToken));
        Assert.False(process.HasExited, $"the worker exited early: {errors}");
        Assert.True(finished == enough.Task, $"no {acks} acknowledgements within 60 s: {errors}");
        await Task.Delay(delayMs, TestContext.Current.CancellationToken);
        process.Kill(entireProcessTree: true); // SIGKILL
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        List<long> acked;
        lock (lines) acked = [.. lines.Where(l => l.StartsWith("ack ", StringComparison.Ordinal)).Select(l => long.Parse(l.AsSpan(4), System.Globalization.CultureInfo.InvariantCulture))];
        // Four writers: every started call is below the highest acknowledged one plus four.
        long started = acked.Count == 0 ? 4 : acked.Max() - first + 5;
        return (acked, started);
    }
}
