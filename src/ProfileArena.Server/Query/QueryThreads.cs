using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace ProfileArena.Server.Query;

/// <summary>
/// <c>Server:QueryThreads</c>: queries merge on this many threads of their own, started once, whose scheduling
/// priority is lowered by <c>Server:QueryThreadNice</c> (Linux nice, per thread). A merge takes a core for its whole
/// length; on the thread pool, beside the writes, queries on every core kept a push's decode waiting for a core (the
/// ingest latency tail, perf/README "Ninth session"). At a lower priority the kernel runs the writes' threads first
/// whenever they are ready, and gives the queries every cycle the writes leave. At most this many queries merge at once;
/// the others wait in order without holding a thread.
/// </summary>
/// <remarks>Threads: <see cref="RunAsync{T}"/> from any thread. The work starts on a query thread with no scheduler of
/// ours around it (what it awaits resumes on the thread pool, as anywhere else: storage that completes at once keeps the
/// whole merge on the query thread), and the caller resumes on the thread pool, never on a query thread (the answer's
/// export and send run at the request's priority). <see cref="Dispose"/> once, at shutdown: work already queued still
/// runs, later calls fail with <see cref="ObjectDisposedException"/>, and the threads end once the queue is empty.</remarks>
internal sealed class QueryThreads : IDisposable
{
    private readonly BlockingCollection<Action> _queue = [];
    private readonly int _niceIncrement;

    /// <summary>Starts <paramref name="count"/> threads (at least one), each lowering its priority by <paramref name="niceIncrement"/>.</summary>
    public QueryThreads(int count, int niceIncrement)
    {
        CheckSettings(count, niceIncrement);
        if (count == 0) throw new ArgumentException("Server:QueryThreads 0 means no query threads: none to start");
        _niceIncrement = niceIncrement;
        for (int i = 0; i < count; i++) new Thread(Loop) { IsBackground = true, Name = $"query-{i}" }.Start();
    }

    /// <summary>Refuses settings out of range, naming them (the server calls it at start, before any query).</summary>
    public static void CheckSettings(int count, int niceIncrement)
    {
        if (count is < 0 or > 256) throw new ArgumentException($"Server:QueryThreads must be 0 (queries merge on the request's thread) to 256, not {count}");
        if (niceIncrement is < 0 or > 39) throw new ArgumentException($"Server:QueryThreadNice must be 0 to 39, not {niceIncrement}");
    }

    /// <summary>Runs <paramref name="work"/> on a query thread once one is free; a token cancelled by then cancels it
    /// there without running it. Once started, the task completes only when the work has (the work writes into the
    /// caller's tree: the caller must not dispose it before).</summary>
    public Task<T> RunAsync<T>(Func<Task<T>> work, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            _queue.Add(() => Start(work, done, cancellationToken));
        }
        catch (InvalidOperationException)
        {
            done.TrySetException(new ObjectDisposedException(nameof(QueryThreads), "the server is stopping"));
        }
        return done.Task;
    }

    private static void Start<T>(Func<Task<T>> work, TaskCompletionSource<T> done, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            done.TrySetCanceled(cancellationToken);
            return;
        }
        Task<T> running;
        try
        {
            running = work();
        }
        catch (Exception e)
        {
            done.TrySetException(e);
            return;
        }
        running.ContinueWith(static (t, state) =>
        {
            var d = (TaskCompletionSource<T>)state!;
            if (t.IsCanceled) d.TrySetCanceled();
            else if (t.IsFaulted) d.TrySetException(t.Exception!.InnerExceptions);
            else d.TrySetResult(t.Result);
        }, done, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void Loop()
    {
        ThreadNice.Lower(_niceIncrement);
        foreach (Action start in _queue.GetConsumingEnumerable()) start();
    }

    /// <summary>Stops taking work; the threads end once the queue is empty.</summary>
    public void Dispose() => _queue.CompleteAdding();
}

/// <summary>Lowers the calling thread's scheduling priority: Linux's per-thread nice value (setpriority on the thread's
/// id; raising a nice value needs no privilege), elsewhere <see cref="Thread.Priority"/>.</summary>
internal static partial class ThreadNice
{
    private const int PrioProcess = 0;

    /// <summary>Raises the calling thread's nice value by <paramref name="increment"/> (capped at 19); where the platform
    /// has none or refuses, the thread keeps its priority (<see cref="Current"/> tells what it has).</summary>
    public static void Lower(int increment)
    {
        if (increment == 0) return;
        if (!OperatingSystem.IsLinux())
        {
            Thread.CurrentThread.Priority = ThreadPriority.BelowNormal;
            return;
        }
        try
        {
            if (Current() is int now) setpriority(PrioProcess, gettid(), Math.Min(19, now + increment));
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // no libc to ask: the thread keeps its priority
        }
    }

    /// <summary>The calling thread's nice value (Linux), else null.</summary>
    public static int? Current()
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            Marshal.SetLastPInvokeError(0);
            int value = getpriority(PrioProcess, gettid());
            return value == -1 && Marshal.GetLastPInvokeError() != 0 ? null : value;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int setpriority(int which, int who, int prio);

    [DllImport("libc", SetLastError = true)]
    private static extern int getpriority(int which, int who);

    [DllImport("libc")]
    private static extern int gettid();
}
