using ProfileArena.Server.Query;

namespace ProfileArena.Tests.Server;

/// <summary><c>Server:MaxConcurrentQueries</c>: the turns themselves, and renders through a server that limits them.</summary>
public class QueryLimiterTests
{
    [Fact]
    public async Task A_second_query_waits_for_the_first_turn_and_a_cancelled_wait_holds_none()
    {
        var limiter = new QueryLimiter(1);
        QueryLimiter.Turn first = await limiter.EnterAsync(TestContext.Current.CancellationToken);
        Assert.Equal(1, limiter.Merging);
        Task<QueryLimiter.Turn> second = limiter.EnterAsync(TestContext.Current.CancellationToken).AsTask();
        using var gone = new CancellationTokenSource();
        Task<QueryLimiter.Turn> abandoned = limiter.EnterAsync(gone.Token).AsTask();
        await Task.Delay(50, TestContext.Current.CancellationToken);
        Assert.False(second.IsCompleted, "a second query merged beside the first with a limit of 1");
        gone.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);
        first.Dispose();
        using (QueryLimiter.Turn turn = await second.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken))
            Assert.Equal(1, limiter.Merging);
        Assert.Equal(0, limiter.Merging); // the cancelled wait took no turn: none is held once the second gives its back
    }

    [Fact]
    public async Task Without_a_limit_queries_never_wait()
    {
        var limiter = new QueryLimiter(0);
        Assert.False(limiter.Limits);
        var turns = new List<QueryLimiter.Turn>();
        for (int i = 0; i < 100; i++)
        {
            ValueTask<QueryLimiter.Turn> enter = limiter.EnterAsync(TestContext.Current.CancellationToken);
            Assert.True(enter.IsCompleted);
            turns.Add(await enter);
        }
        foreach (QueryLimiter.Turn turn in turns) turn.Dispose();
    }

    [Fact]
    public Task Renders_through_a_limit_of_one_answer_as_without_it_and_say_how_long_they_queued() =>
        ConcurrentRenders.AnswerAlike("--Server:MaxConcurrentQueries", ["0", "1"], "queue", limit => limit == "1");
}
