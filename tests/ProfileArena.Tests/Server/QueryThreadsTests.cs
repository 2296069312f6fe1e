using ProfileArena.Server.Query;

namespace ProfileArena.Tests.Server;

/// <summary><c>Server:QueryThreads</c>: the threads themselves (where work runs, how many at once, at what priority),
/// and renders through a server that merges on them.</summary>
public class QueryThreadsTests
{
    [Fact]
    public async Task Work_runs_on_the_query_threads_at_most_two_at_once_at_a_lower_priority()
    {
        int? baseNice = ThreadNice.Current();
        using var threads = new QueryThreads(2, 5);
        using var gate = new ManualResetEventSlim();
        int running = 0, most = 0, started = 0;
        var seen = new System.Collections.Concurrent.ConcurrentBag<(string? Name, int? Nice, int? ProcNice)>();
        Task<int>[] work = Enumerable.Range(0, 6).Select(i => threads.RunAsync(() =>
        {
            Interlocked.Increment(ref started);
            int now = Interlocked.Increment(ref running);
            InterlockedMax(ref most, now);
            seen.Add((Thread.CurrentThread.Name, ThreadNice.Current(), ProcNice()));
            gate.Wait(TimeSpan.FromSeconds(30));
            Interlocked.Decrement(ref running);
            return Task.FromResult(i);
        }, TestContext.Current.CancellationToken)).ToArray();

        await WaitUntil(() => Volatile.Read(ref started) == 2);
        await Task.Delay(100, TestContext.Current.CancellationToken);
        Assert.Equal(2, Volatile.Read(ref started)); // the other four wait for a thread, not beside the first two
        gate.Set();
        Assert.Equal(Enumerable.Range(0, 6), await Task.WhenAll(work).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.Equal(2, most);
        Assert.Equal(6, seen.Count);
        foreach (var (name, nice, procNice) in seen)
        {
            Assert.StartsWith("query-", name);
            if (!OperatingSystem.IsLinux()) continue;
            // Read back two ways: getpriority on the thread, and the kernel's own account (/proc/thread-self/stat).
            Assert.NotNull(baseNice);
            Assert.Equal(Math.Min(19, baseNice.Value + 5), nice);
            Assert.Equal(nice, procNice);
        }
        Assert.Equal(baseNice, ThreadNice.Current()); // the caller's own priority is untouched
    }

    [Fact]
    public async Task A_query_cancelled_before_its_turn_never_runs()
    {
        using var threads = new QueryThreads(1, 0);
        using var gate = new ManualResetEventSlim();
        using var started = new ManualResetEventSlim();
        Task<int> first = threads.RunAsync(() =>
        {
            started.Set();
            gate.Wait(TimeSpan.FromSeconds(30));
            return Task.FromResult(1);
        }, TestContext.Current.CancellationToken);
        Assert.True(started.Wait(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        using var gone = new CancellationTokenSource();
        bool ran = false;
        Task<int> second = threads.RunAsync(() =>
        {
            ran = true;
            return Task.FromResult(2);
        }, gone.Token);
        gone.Cancel();
        gate.Set();
        Assert.Equal(1, await first.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => second.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.False(ran);
    }

    [Fact]
    public void Out_of_range_settings_are_refused_with_their_names()
    {
        Assert.Contains("Server:QueryThreads", Assert.Throws<ArgumentException>(() => new QueryThreads(0, 10)).Message);
        Assert.Contains("Server:QueryThreadNice", Assert.Throws<ArgumentException>(() => new QueryThreads(1, 40)).Message);
        Assert.Contains("Server:QueryThreadNice", Assert.Throws<ArgumentException>(() => new QueryThreads(1, -1)).Message);
        // The server refuses them at start, not at its first query.
        foreach (var (setting, name) in new[] { ("--Server:QueryThreads=-1", "Server:QueryThreads"), ("--Server:QueryThreads=257", "Server:QueryThreads"), ("--Server:QueryThreadNice=40", "Server:QueryThreadNice") })
        {
            var e = Assert.Throws<ArgumentException>(() => ProfileArena.Server.Hosting.ServerApp.Build(["--urls", "http://127.0.0.1:0", setting], (_, _) => { }));
            Assert.Contains(name, e.Message);
        }
    }

    [Fact]
    public Task Renders_on_query_threads_answer_as_on_the_request_thread_and_say_how_long_the_handoff_took() =>
        ConcurrentRenders.AnswerAlike("--Server:QueryThreads", ["0", "2"], "handoff", count => count != "0");

    /// <summary>The calling thread's nice value as the kernel reports it (field 19 of /proc/thread-self/stat), else null.</summary>
    private static int? ProcNice()
    {
        if (!OperatingSystem.IsLinux()) return null;
        string stat = File.ReadAllText("/proc/thread-self/stat");
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // after "pid (comm) ": fields 3, 4, …
        return int.Parse(fields[19 - 3], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (int i = 0; i < 3000 && !condition(); i++) await Task.Delay(10, TestContext.Current.CancellationToken);
        Assert.True(condition());
    }
}
