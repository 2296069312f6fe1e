namespace ProfileArena.Server.Query;

/// <summary>
/// <c>Server:MaxConcurrentQueries</c>: at most that many queries merge at once; the others wait for a turn without
/// holding a thread. A merge takes a core for its whole length, so on a small machine queries on every core leave
/// none to the writes' decode and apply; with a limit, ingest keeps the cores the queries do not take (and queries
/// wait instead: the trade is measured in perf/README, "Eighth session"). 0 = no limit.
/// </summary>
/// <remarks>Threads: any; the turn is released by disposing the value <see cref="EnterAsync"/> returns, once.</remarks>
internal sealed class QueryLimiter(int limit)
{
    private readonly SemaphoreSlim? _turns = limit > 0 ? new SemaphoreSlim(limit) : null;

    /// <summary>True when queries wait for a turn (a limit is set).</summary>
    public bool Limits => _turns != null;

    /// <summary>Queries merging now (with a limit; 0 without).</summary>
    public int Merging => _turns == null ? 0 : limit - _turns.CurrentCount;

    /// <summary>Waits for a turn (at once without a limit); dispose the result to give it back. A cancelled wait
    /// throws and holds no turn.</summary>
    public async ValueTask<Turn> EnterAsync(CancellationToken cancellationToken)
    {
        if (_turns == null) return default;
        await _turns.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new Turn(_turns);
    }

    /// <summary>A query's turn; <see cref="Dispose"/> gives it back.</summary>
    public readonly struct Turn(SemaphoreSlim? turns) : IDisposable
    {
        /// <summary>Gives the turn back (nothing without a limit).</summary>
        public void Dispose() => turns?.Release();
    }
}
