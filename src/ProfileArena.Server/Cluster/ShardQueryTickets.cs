using ProfileArena.Server.Storage;

namespace ProfileArena.Server.Cluster;

/// <summary>
/// The query parts this silo's shard grains compute in the background (README "Running a cluster": long queries),
/// by ticket: a grain's <c>StartQuery</c> starts one and answers its ticket at once; the receiving silo's
/// <c>TakeQuery</c> calls wait a bounded time each (<see cref="ProfileClusterOptions.QueryPollWait"/>) until it is
/// done, then take the reply (and read a large partial tree's further pieces with <c>ReadChunk</c>). So no call
/// comes near Orleans' ResponseTimeout, however long the merge takes.
/// <para>Bounded: a ticket nobody asked about for <see cref="ProfileClusterOptions.QueryResultSeconds"/> (the
/// collecting silo died, or gave up) is cancelled and its bytes released; finished parts held for collection stay
/// under <see cref="ProfileClusterOptions.MaxPendingResultBytes"/> per silo (a part that would pass it is answered
/// as a 503 refusal instead). A grain's deactivation cancels its tickets and waits for their work, which reads
/// the grain's shard (<see cref="StopAll"/>). Thread-safe: the work finishes on the thread pool, the grains call
/// on their own turns.</para>
/// </summary>
internal sealed class ShardQueryTickets : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<Guid, Ticket> _tickets = [];
    private readonly ProfileClusterOptions _options;
    private readonly TimeProvider _time;
    private readonly ITimer _sweep;
    private long _pendingBytes;

    public ShardQueryTickets(ProfileClusterOptions options, TimeProvider time)
    {
        _options = options;
        _time = time;
        TimeSpan period = TimeSpan.FromSeconds(Math.Max(1, options.QueryResultSeconds / 4.0));
        _sweep = time.CreateTimer(_ => Sweep(), null, period, period);
    }

    /// <summary>Bytes of finished parts waiting for collection on this silo (tests read it to see them released).</summary>
    public long PendingBytes
    {
        get
        {
            lock (_lock) return _pendingBytes;
        }
    }

    /// <summary>Tickets held (running or waiting for collection).</summary>
    public int Count
    {
        get
        {
            lock (_lock) return _tickets.Count;
        }
    }

    /// <summary>Tickets of grain <paramref name="owner"/> (a shard with parts running or held is not moved).</summary>
    public int Held(string owner)
    {
        lock (_lock) return _tickets.Values.Count(t => t.Owner == owner);
    }

    /// <summary>Starts <paramref name="work"/> on the thread pool for grain <paramref name="owner"/>; returns its ticket.</summary>
    public Guid Start(string owner, Func<CancellationToken, Task<ShardQueryPart>> work)
    {
        var id = Guid.NewGuid();
        var ticket = new Ticket(owner, new CancellationTokenSource(), _time.GetTimestamp());
        lock (_lock)
        {
            _tickets.Add(id, ticket);
            ticket.Work = Task.Run(() => Run(id, ticket, work)); // Run takes the lock only after this one is left
        }
        return id;
    }

    private async Task Run(Guid id, Ticket ticket, Func<CancellationToken, Task<ShardQueryPart>> work)
    {
        ShardQueryPart part;
        try
        {
            part = await work(ticket.Cancel.Token);
        }
        catch (OperationCanceledException) when (ticket.Cancel.IsCancellationRequested)
        {
            return; // cancelled: the ticket is already gone
        }
        catch (Exception e)
        {
            part = new ShardQueryPart(WireCodec.Outcome(e) ?? new ShardOutcome(ShardOutcomeKind.Unavailable, $"{e.GetType().Name}: {e.Message}"), 0, [], [], null);
        }
        lock (_lock)
        {
            if (!_tickets.TryGetValue(id, out Ticket? still) || still != ticket)
            {
                part.Tree?.Dispose(); // cancelled or expired meanwhile
                return;
            }
            long bytes = part.Tree?.Length ?? 0;
            if (_pendingBytes + bytes > _options.MaxPendingResultBytes)
            {
                part = new ShardQueryPart(new ShardOutcome(ShardOutcomeKind.Unavailable,
                    $"the partial result ({bytes} bytes) would pass Cluster:MaxPendingResultBytes ({_options.MaxPendingResultBytes}) of results waiting for collection on this silo"), 0, [], [], null);
                bytes = 0;
            }
            _pendingBytes += bytes;
            ticket.Bytes = bytes;
            ticket.Part = part;
        }
    }

    /// <summary>The reply of <paramref name="id"/> once its work is done, waiting for it at most
    /// <paramref name="wait"/>; null while it runs. A partial tree larger than one message stays held for
    /// <see cref="ReadChunk"/>; everything else is released now.</summary>
    public async Task<ShardQueryReply?> Take(string owner, Guid id, TimeSpan wait)
    {
        Ticket ticket;
        lock (_lock)
        {
            if (!_tickets.TryGetValue(id, out Ticket? found) || found.Owner != owner) return Gone(owner, id);
            ticket = found;
            ticket.LastContact = _time.GetTimestamp();
        }
        if (!ticket.Work.IsCompleted)
        {
            try
            {
                await ticket.Work.WaitAsync(wait, _time);
            }
            catch (TimeoutException)
            {
                return null;
            }
        }
        lock (_lock)
        {
            if (!_tickets.TryGetValue(id, out Ticket? found) || found != ticket || ticket.Part is not { } part) return Gone(owner, id);
            int chunk = _options.MessageChunkBytes;
            long length = part.Tree?.Length ?? 0;
            byte[] head = part.Tree is null ? [] : part.Tree.GetBuffer().AsSpan(0, (int)Math.Min(length, chunk)).ToArray();
            bool more = length > chunk;
            if (!more) Release(id, ticket);
            else ticket.Taken = true;
            return new ShardQueryReply(part.Outcome, part.TreesMerged, part.Samples, part.Matched, length, head, more ? id : Guid.Empty);
        }
    }

    /// <summary>The piece of the taken partial tree of <paramref name="id"/> at <paramref name="offset"/>; the last
    /// piece releases the ticket.</summary>
    public byte[] ReadChunk(string owner, Guid id, long offset)
    {
        lock (_lock)
        {
            if (!_tickets.TryGetValue(id, out Ticket? ticket) || ticket.Owner != owner || !ticket.Taken || ticket.Part?.Tree is not { } tree
                || offset < 0 || offset >= tree.Length)
                throw new InvalidOperationException($"partial result {id} of shard {owner} has no bytes at {offset} (expired after Cluster:QueryResultSeconds, or already read)");
            ticket.LastContact = _time.GetTimestamp();
            int count = (int)Math.Min(tree.Length - offset, _options.MessageChunkBytes);
            byte[] chunk = tree.GetBuffer().AsSpan((int)offset, count).ToArray();
            if (offset + count == tree.Length) Release(id, ticket);
            return chunk;
        }
    }

    /// <summary>Cancels <paramref name="id"/>'s work (if running) and releases it; unknown tickets are ignored.</summary>
    public void Cancel(string owner, Guid id)
    {
        lock (_lock)
        {
            if (_tickets.TryGetValue(id, out Ticket? ticket) && ticket.Owner == owner) Release(id, ticket);
        }
    }

    /// <summary>Cancels every ticket of grain <paramref name="owner"/> and waits until their work has stopped
    /// touching its shard (deactivation: the shard is disposed next).</summary>
    public async Task StopAll(string owner)
    {
        List<Task> running = [];
        lock (_lock)
        {
            foreach (var (id, ticket) in _tickets.Where(t => t.Value.Owner == owner).ToList())
            {
                running.Add(ticket.Work);
                Release(id, ticket);
            }
        }
        await Task.WhenAll(running); // Run never throws
    }

    /// <summary>Drops tickets nobody asked about for <see cref="ProfileClusterOptions.QueryResultSeconds"/>.</summary>
    internal void Sweep()
    {
        lock (_lock)
        {
            foreach (var (id, ticket) in _tickets.ToList())
            {
                if (_time.GetElapsedTime(ticket.LastContact).TotalSeconds > _options.QueryResultSeconds) Release(id, ticket);
            }
        }
    }

    private void Release(Guid id, Ticket ticket)
    {
        _tickets.Remove(id);
        _pendingBytes -= ticket.Bytes;
        ticket.Bytes = 0;
        ticket.Cancel.Cancel();
        ticket.Part?.Tree?.Dispose();
    }

    private static ShardQueryReply Gone(string owner, Guid id) =>
        new(new ShardOutcome(ShardOutcomeKind.Unavailable, $"query part {id} is not known to shard {owner} (expired after Cluster:QueryResultSeconds, cancelled, or the shard was reactivated)"), 0, [], [], 0, [], Guid.Empty);

    public void Dispose()
    {
        _sweep.Dispose();
        lock (_lock)
        {
            foreach (var (id, ticket) in _tickets.ToList()) Release(id, ticket);
        }
    }

    private sealed class Ticket(string owner, CancellationTokenSource cancel, long since)
    {
        public string Owner { get; } = owner;
        public CancellationTokenSource Cancel { get; } = cancel;
        public Task Work { get; set; } = Task.CompletedTask;
        public long LastContact { get; set; } = since;
        public ShardQueryPart? Part { get; set; }
        public long Bytes { get; set; }
        public bool Taken { get; set; }
    }
}

/// <summary>A shard's finished part of a query, before it is sent.</summary>
/// <param name="Outcome">Ok, or the refusal (QueryLimit, Loading, Unavailable).</param>
/// <param name="TreesMerged">Stored trees merged.</param>
/// <param name="Samples">Timeline sums, one per step.</param>
/// <param name="Matched">Matching series with data.</param>
/// <param name="Tree">The partial tree as <c>TreeStore.Save</c> bytes, or null when nothing matched.</param>
internal sealed record ShardQueryPart(ShardOutcome Outcome, int TreesMerged, long[] Samples, WireSeries[] Matched, MemoryStream? Tree);
