using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace ProfileArena.Server.Query;

/// <summary>
/// <c>Server:QueryThreads</c>: queries merge on this many threads of their own, started once, whose scheduling
/// priority is lowered by <c>Server:QueryThreadNice</c> (Linux nice, per thread). A merge takes a core for its whole
/// length; on the thread pool, beside the writes, queries on every core kept a push's decode and apply waiting for a
/// core (the ingest latency tail, perf/README "Ninth session"). At a lower priority the kernel runs a write's threads
/// first whenever they are ready, and gives the queries every cycle the writes leave. At most this many queries merge at
/// once; the others wait in order without holding a thread.
/// </summary>
/// <remarks>Threads: <see cref="RunAsync{T}"/> from any thread; the work runs on one of the query threads (what it
/// awaits resumes wherever its awaiter says: storage that completes at once keeps the whole merge there).
/// <see cref="Dispose"/> once, at shutdown: queued work not yet started is cancelled.</remarks>
internal sealed class QueryThreads : TaskScheduler, IDisposable
{
    private readonly BlockingCollection<Task> _queue = [];
    private readonly Thread[] _threads;
    private readonly int _niceIncrement;

    /// <summary>Starts <paramref name="count"/> threads, each lowering its priority by <paramref name="niceIncrement"/>.</summary>
    public QueryThreads(int count, int niceIncrement)
    {
        if (count is < 1 or > 256) throw new ArgumentException($"Server:QueryThreads must be 0 (queries merge on the request's thread) to 256, not {count}");
        if (niceIncrement is < 0 or > 39) throw new ArgumentException($"Server:QueryThreadNice must be 0 to 39, not {niceIncrement}");
        _niceIncrement = niceIncrement;
        _threads = new Thread[count];
        for (int i = 0; i < count; i++)
        {
            _threads[i] = new Thread(Loop) { IsBackground = true, Name = $"query-{i}" };
            _threads[i].Start();
        }
    }

    /// <inheritdoc/>
    public override int MaximumConcurrencyLevel => _threads.Length;

    /// <summary>Runs <paramref name="work"/> on a query thread; a cancelled token before it starts cancels it.</summary>
    public Task<T> RunAsync<T>(Func<Task<T>> work, CancellationToken cancellationToken) =>
        Task.Factory.StartNew(work, cancellationToken, TaskCreationOptions.DenyChildAttach, this).Unwrap();

    private void Loop()
    {
        ThreadNice.Lower(_niceIncrement);
        try
        {
            foreach (Task task in _queue.GetConsumingEnumerable()) TryExecuteTask(task);
        }
        catch (ObjectDisposedException)
        {
            // shut down
        }
    }

    /// <inheritdoc/>
    protected override void QueueTask(Task task) => _queue.Add(task);

    /// <summary>Inline only on a query thread (a task waited on there); never on a request's thread.</summary>
    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) =>
        Array.IndexOf(_threads, Thread.CurrentThread) >= 0 && TryExecuteTask(task);

    /// <inheritdoc/>
    protected override IEnumerable<Task> GetScheduledTasks() => _queue.ToArray();

    /// <summary>Stops taking work; the threads end once the queue is empty.</summary>
    public void Dispose() => _queue.CompleteAdding();
}

/// <summary>Lowers the calling thread's scheduling priority: Linux's per-thread nice value (setpriority on the thread's
/// id; raising a nice value needs no privilege), elsewhere <see cref="Thread.Priority"/>.</summary>
internal static partial class ThreadNice
{
    private const int PrioProcess = 0;

    /// <summary>Raises the calling thread's nice value by <paramref name="increment"/> (capped at 19); returns the new
    /// value, or null when the platform has none or refused.</summary>
    public static int? Lower(int increment)
    {
        if (increment == 0) return Current();
        if (!OperatingSystem.IsLinux())
        {
            Thread.CurrentThread.Priority = ThreadPriority.BelowNormal;
            return null;
        }
        try
        {
            int tid = gettid();
            int? now = Current();
            if (now is null) return null;
            int target = Math.Min(19, now.Value + increment);
            return setpriority(PrioProcess, tid, target) == 0 ? target : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
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
