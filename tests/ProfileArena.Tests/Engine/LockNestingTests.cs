namespace ProfileArena.Tests.Engine;

/// <summary>
/// Issue 14 item 7: nesting the contract allows must never hang. Nested reads work even with writers
/// waiting (writer preference does not apply to a thread that already holds a tree lock); nested
/// writes are refused at once with the rule. Every wait is bounded: a hang fails, it does not hang CI.
/// </summary>
public class LockNestingTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static Thread Start(Action body)
    {
        var t = new Thread(() => body()) { IsBackground = true }; // a deadlocked thread must not keep the test host alive
        t.Start();
        return t;
    }

    /// <summary>Spins (bounded) until <paramref name="condition"/> holds.</summary>
    private static void WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting until {what}");
            Thread.Sleep(1);
        }
    }

    [Fact]
    public void CrossedWritesFromVisitorsAreRefusedAtOnce()
    {
        // (a) A's visitor inserts into B while B's visitor inserts into A: a deadlock before.
        using var store = new TreeStore();
        var a = store.CreateTree();
        var b = store.CreateTree();
        a.Insert("x", 1);
        b.Insert("y", 1);
        using var bothInside = new Barrier(2);
        Exception? fromA = null, fromB = null;
        var ta = Start(() => a.Iterate((_, _, _) =>
        {
            Assert.True(bothInside.SignalAndWait(Bound));
            fromA = Record.Exception(() => b.Insert("from-a", 1));
        }));
        var tb = Start(() => b.Iterate((_, _, _) =>
        {
            Assert.True(bothInside.SignalAndWait(Bound));
            fromB = Record.Exception(() => a.Insert("from-b", 1));
        }));
        Assert.True(ta.Join(Bound) && tb.Join(Bound), "crossed writes from visitors hung");
        foreach (var ex in new[] { fromA, fromB })
        {
            var refused = Assert.IsType<InvalidOperationException>(ex);
            Assert.Contains("may be read", refused.Message);
            Assert.Contains("after Iterate returns", refused.Message);
        }
        Assert.Equal(1UL, a.Total);
        Assert.Equal(1UL, b.Total);

        // Every kind of write is refused inside a visitor, for trees of any store; reads are not.
        using var other = new TreeStore();
        var c = other.CreateTree();
        a.Iterate((_, _, _) =>
        {
            Assert.Throws<InvalidOperationException>(() => c.Insert("z", 1));
            Assert.Throws<InvalidOperationException>(() => c.MergeFrom(a));
            Assert.Throws<InvalidOperationException>(() => b.Clone());
            Assert.Throws<InvalidOperationException>(() => c.Clear());
            Assert.Throws<InvalidOperationException>(() => c.Truncate(1));
            Assert.Throws<InvalidOperationException>(() => other.Remove(c));
            Assert.Single(b.Top(1, TopBy.Total));
            other.Save(new MemoryStream());
        });
        Assert.Equal(0UL, c.Total);
    }

    [Fact]
    public void CrossedNestedReadsWithWritersWaitingOnBothTreesComplete()
    {
        // (b) readers only: A's visitor iterates B and B's visitor iterates A while a writer waits on
        // each. With writer preference for nested readers this was a four-thread cycle.
        using var store = new TreeStore();
        var a = store.CreateTree();
        var b = store.CreateTree();
        a.Insert("x", 1);
        b.Insert("y", 1);
        using var bothInside = new ManualResetEventSlim();
        using var go = new ManualResetEventSlim();
        int inside = 0;
        ulong seenByA = 0, seenByB = 0;
        void Reader(ProfileTree mine, ProfileTree theirs, Action<ulong> seen) => mine.Iterate((_, _, _) =>
        {
            if (Interlocked.Increment(ref inside) == 2) bothInside.Set();
            Assert.True(go.Wait(Bound, TestContext.Current.CancellationToken));
            ulong sum = 0;
            theirs.Iterate((_, self, _) => sum += self);
            seen(sum);
        });
        var ra = Start(() => Reader(a, b, s => seenByA = s));
        var rb = Start(() => Reader(b, a, s => seenByB = s));
        Assert.True(bothInside.Wait(Bound, TestContext.Current.CancellationToken));
        var wa = Start(() => a.Insert("x", 10));
        var wb = Start(() => b.Insert("y", 10));
        WaitUntil(() => a.LockStateForTests.WaitingWriters == 1 && b.LockStateForTests.WaitingWriters == 1, "both writers wait");
        go.Set();
        Assert.True(ra.Join(Bound) && rb.Join(Bound), "nested readers hung behind waiting writers");
        Assert.True(wa.Join(Bound) && wb.Join(Bound), "writers hung");
        // Each nested read saw a whole state; the first one saw the other tree before its writer (which
        // waited for the other reader); the second may come after that reader left and the writer wrote.
        Assert.Contains(seenByA, new[] { 1UL, 11UL });
        Assert.Contains(seenByB, new[] { 1UL, 11UL });
        Assert.True(seenByA == 1 || seenByB == 1, $"both nested reads saw the writers' values ({seenByA}, {seenByB})");
        Assert.Equal(11UL, a.Total);
        Assert.Equal(11UL, b.Total);
    }

    [Fact]
    public void AMergeReadsItsSourceWhileAWriterWaitsOnTheSourceAndAVisitorWaitsOnTheTarget()
    {
        // The server's shape: a query merges tree S into T while S has a waiting writer, and a reader
        // of S (inside its visitor) waits to read T. The merge holds T's write lock first (T has the
        // lower record address: slot 0); its read of S must not queue behind S's writer.
        using var store = new TreeStore();
        var t = store.CreateTree(); // slot 0
        var s = store.CreateTree(); // slot 1
        s.Insert("a;b", 2);
        t.Insert("c", 1);
        using var inside = new ManualResetEventSlim();
        using var go = new ManualResetEventSlim();
        ulong readerSaw = 0;
        var reader = Start(() => s.Iterate((_, _, _) =>
        {
            if (inside.IsSet) return;
            inside.Set();
            Assert.True(go.Wait(Bound, TestContext.Current.CancellationToken));
            t.Iterate((_, self, _) => readerSaw += self); // waits for the merge's write lock on T
        }));
        Assert.True(inside.Wait(Bound, TestContext.Current.CancellationToken));
        var writer = Start(() => s.Insert("a;b", 1));
        WaitUntil(() => s.LockStateForTests.WaitingWriters == 1, "the writer waits on S");
        var merge = Start(() => t.MergeFrom(s));
        WaitUntil(() => t.LockStateForTests.State == -1 || t.Total == 3, "the merge holds T");
        go.Set();
        Assert.True(merge.Join(Bound), "the merge's read of its source hung behind the source's waiting writer");
        Assert.True(reader.Join(Bound) && writer.Join(Bound), "reader or writer hung");
        Assert.Equal(3UL, t.Total);
        Assert.Equal(3UL, s.Total);
        Assert.Equal(3UL, readerSaw);
    }
}
