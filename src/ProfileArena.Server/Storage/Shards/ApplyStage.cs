namespace ProfileArena.Server.Storage.Shards;

/// <summary>
/// A shard's apply stage: one dedicated thread that applies durable, already acknowledged write groups to memory in
/// the order the writer handed them over (WAL order), while the writer goes on writing and syncing the next groups.
/// It counts groups handed over (<see cref="Queued"/>) and applied, and the bytes not yet applied (the backlog), so
/// that a query can wait until everything acknowledged before it started is applied (read-your-writes), the writer
/// can wait for an empty stage (snapshot, retention, compaction, stop) or for the backlog to shrink (backpressure).
/// </summary>
/// <remarks>Threads: <see cref="Add"/> is called by the shard's writer loop only; the waits from any thread. One lock
/// guards the queue and the counters; the apply itself runs outside it. A dedicated thread rather than a pool task: a
/// query waits for it synchronously on a pool thread, and an apply that needed a pool thread of its own could then be
/// starved by the very queries waiting for it. The work's own code must not throw (the shard turns an apply failure
/// into a refusal of later writes); should it throw anyway, the group still counts as applied so no waiter hangs.</remarks>
internal sealed class ApplyStage
{
    private readonly object _lock = new();
    private readonly Queue<Pending> _queue = new();
    private readonly List<(long Applied, long Backlog, TaskCompletionSource Done)> _waiters = [];
    private readonly Thread _thread;
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _queued, _applied, _backlogBytes;
    private int _syncWaiters;
    private bool _completing, _discard, _stopped;

    /// <summary>Starts the stage's thread (named after the shard, for dumps).</summary>
    public ApplyStage(string name)
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "apply " + name };
        _thread.Start();
    }

    /// <summary>Groups handed over so far: a query that waits for this many applied sees every acknowledged write.</summary>
    public long Queued
    {
        get { lock (_lock) return _queued; }
    }

    /// <summary>Groups applied so far (or dropped at disposal): every group numbered up to it is in memory.</summary>
    public long Applied
    {
        get { lock (_lock) return _applied; }
    }

    /// <summary>Bytes of the groups handed over but not yet applied.</summary>
    public long BacklogBytes
    {
        get { lock (_lock) return _backlogBytes; }
    }

    /// <summary>Callers waiting now for groups to be applied or the backlog to shrink (tests observe a query or the writer waiting).</summary>
    public int Waiters
    {
        get { lock (_lock) return _syncWaiters + _waiters.Count; }
    }

    /// <summary>Completes when the thread has ended (after <see cref="Complete"/>).</summary>
    public Task Ended => _ended.Task;

    /// <summary>Hands over a group of <paramref name="bytes"/>: <paramref name="apply"/> runs on the stage's thread;
    /// <paramref name="drop"/> instead when the stage is disposed before it gets there. False (nothing ran, nothing will)
    /// once the stage is completing.</summary>
    public bool Add(long bytes, Action apply, Action drop)
    {
        lock (_lock)
        {
            if (_completing) return false;
            _queue.Enqueue(new Pending(bytes, apply, drop));
            _queued++;
            _backlogBytes += bytes;
            Monitor.PulseAll(_lock);
            return true;
        }
    }

    /// <summary>Blocks until <paramref name="groups"/> groups are applied (or the stage has stopped).</summary>
    public void WaitApplied(long groups)
    {
        lock (_lock)
        {
            _syncWaiters++;
            try
            {
                while (_applied < groups && !_stopped) Monitor.Wait(_lock);
            }
            finally
            {
                _syncWaiters--;
            }
        }
    }

    /// <summary>Completes once <paramref name="groups"/> groups are applied (or the stage has stopped).</summary>
    public Task WhenApplied(long groups) => When(groups, long.MaxValue);

    /// <summary>Completes once the backlog is under <paramref name="bytes"/> (or the stage has stopped).</summary>
    public Task WhenBacklogBelow(long bytes) => When(0, bytes);

    private Task When(long applied, long backlogBelow)
    {
        lock (_lock)
        {
            if (_stopped || (_applied >= applied && _backlogBytes < backlogBelow)) return Task.CompletedTask;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((applied, backlogBelow, done));
            return done.Task;
        }
    }

    /// <summary>No more groups: the thread applies what it holds and ends (<paramref name="discard"/>: drops it instead).</summary>
    public void Complete(bool discard)
    {
        lock (_lock)
        {
            _completing = true;
            _discard |= discard;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>Waits for the thread to end (after <see cref="Complete"/>); the shard disposes its trees only after.</summary>
    public void Join()
    {
        if (Thread.CurrentThread != _thread) _thread.Join();
    }

    private void Run()
    {
        try
        {
            while (true)
            {
                Pending next;
                List<Pending>? dropped = null;
                lock (_lock)
                {
                    while (_queue.Count == 0 && !_completing) Monitor.Wait(_lock);
                    if (_discard)
                    {
                        dropped = [.. _queue];
                        _queue.Clear();
                    }
                    if (!_queue.TryDequeue(out next))
                    {
                        if (dropped == null) return;
                        next = default;
                    }
                }
                if (dropped != null)
                {
                    foreach (Pending p in dropped) p.Drop();
                    return;
                }
                try
                {
                    next.Apply();
                }
                finally
                {
                    lock (_lock)
                    {
                        _applied++;
                        _backlogBytes -= next.Bytes;
                        Monitor.PulseAll(_lock);
                        Release();
                    }
                }
            }
        }
        finally
        {
            lock (_lock)
            {
                _stopped = true;
                _completing = true;
                Monitor.PulseAll(_lock);
                Release();
            }
            _ended.TrySetResult();
        }
    }

    /// <summary>Completes the async waiters whose condition holds now (under the lock).</summary>
    private void Release()
    {
        for (int i = _waiters.Count - 1; i >= 0; i--)
        {
            var (applied, backlog, done) = _waiters[i];
            if (_stopped || (_applied >= applied && _backlogBytes < backlog))
            {
                _waiters.RemoveAt(i);
                done.TrySetResult();
            }
        }
    }

    private readonly record struct Pending(long Bytes, Action Apply, Action Drop);
}
