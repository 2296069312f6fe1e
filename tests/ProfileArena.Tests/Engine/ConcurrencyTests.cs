using System.Text;
using ProfileArena.Baseline;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Engine;

/// <summary>The concurrency contract of native-notes.md, exercised (bounded counts, small scale for CI).</summary>
public class ConcurrencyTests
{
    private static List<(byte[] Key, ulong Value)> Keys(ulong seed, int count, string[] pool)
    {
        var rng = new SplitMix64(seed);
        var keys = new List<(byte[], ulong)>(count);
        for (int i = 0; i < count; i++)
        {
            string key = rng.NextBelow(4) == 0
                ? $"{pool[rng.NextBelow((ulong)pool.Length)]};w{seed};{rng.NextBelow(500)}"
                : pool[rng.NextBelow((ulong)pool.Length)];
            keys.Add((Encoding.UTF8.GetBytes(key), rng.NextBelow(100)));
        }
        return keys;
    }

    [Fact]
    public void WritersReadersSaversAndChurnOnOneStoreMatchBaseline()
    {
        string[] pool = SharedData.Files("collapsed").Take(4).SelectMany(f => FoldedLines.Read(f).Select(l => l.Stack)).Take(3000).ToArray();
        const int writers = 3, perWriter = 4000;
        using var store = new TreeStore();
        var own = Enumerable.Range(0, writers).Select(_ => store.CreateTree()).ToArray();
        var shared = store.CreateTree();
        var work = Enumerable.Range(0, writers).Select(w => Keys((ulong)w + 1, perWriter, pool)).ToArray();
        var failures = new List<Exception>();
        int writersLeft = writers;

        void Guard(Action body)
        {
            try { body(); }
            catch (Exception e) { lock (failures) failures.Add(e); }
        }

        var threads = new List<Thread>();
        for (int w = 0; w < writers; w++)
        {
            int me = w;
            threads.Add(new Thread(() => Guard(() =>
            {
                try
                {
                    for (int i = 0; i < perWriter; i++)
                    {
                        var (key, value) = work[me][i];
                        own[me].Insert(key, value);
                        if (i % 3 == 0) shared.Insert(key, value); // several writers on one tree: serialised by its lock
                    }
                }
                finally { Interlocked.Decrement(ref writersLeft); }
            })));
        }
        for (int r = 0; r < 2; r++)
        {
            int me = r;
            threads.Add(new Thread(() => Guard(() =>
            {
                var rng = new SplitMix64((ulong)me + 100);
                while (Volatile.Read(ref writersLeft) > 0)
                {
                    var tree = rng.NextBelow(4) == 0 ? shared : own[rng.NextBelow(writers)];
                    ulong before = tree.Total, sum = 0;
                    tree.Iterate((_, self, total) => { sum += self; Assert.True(total >= self); });
                    Assert.True(sum >= before && sum <= tree.Total, "an iteration sees one consistent state of the tree");
                    Assert.True(tree.Top(5, TopBy.Total).Length <= 5);
                }
            })));
        }
        threads.Add(new Thread(() => Guard(() =>
        {
            // Snapshots while ingesting: every saved tree is internally consistent.
            while (Volatile.Read(ref writersLeft) > 0)
            {
                var ms = new MemoryStream();
                store.Save(ms);
                using var copy = TreeStore.Load(new MemoryStream(ms.ToArray()));
                foreach (var t in copy.GetTrees())
                {
                    ulong sum = 0;
                    t.Iterate((_, self, _) => sum += self);
                    Assert.Equal(t.Total, sum);
                }
            }
        })));
        threads.Add(new Thread(() => Guard(() =>
        {
            // Create/remove churn: slots are reused under other threads' feet.
            for (int i = 0; Volatile.Read(ref writersLeft) > 0 || i < 50; i++)
            {
                var t = store.CreateTree();
                t.Insert("churn;a", 1);
                Assert.Equal(1UL, t.Total);
                store.Remove(t);
                Assert.Throws<InvalidOperationException>(() => t.Insert("x", 1));
            }
        })));
        foreach (var t in threads) t.Start();
        foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromMinutes(2)), "a thread hung");
        Assert.Empty(failures);

        var sharedBaseline = new BaselineTree();
        for (int w = 0; w < writers; w++)
        {
            var baseline = new BaselineTree();
            for (int i = 0; i < perWriter; i++)
            {
                baseline.Insert(work[w][i].Key, work[w][i].Value);
                if (i % 3 == 0) sharedBaseline.Insert(work[w][i].Key, work[w][i].Value);
            }
            TreeSnapshot.AssertSame(baseline, own[w]);
        }
        TreeSnapshot.AssertSame(sharedBaseline, shared);
        Assert.Equal(writers + 1, store.TreeCount);
        Assert.Equal(own.Sum(t => t.NodeCount) + shared.NodeCount, store.NodeCount);
    }

    [Fact]
    public void WritersOnOtherTreesDoNotWaitForATreesLockButItsOwnWritersDo()
    {
        using var store = new TreeStore();
        var a = store.CreateTree();
        var b = store.CreateTree();
        a.Insert("x;y", 1);
        using var inside = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var reader = new Thread(() => a.Iterate((_, _, _) =>
        {
            inside.Set();
            release.Wait(); // holds a's read lock
        }));
        reader.Start();
        CancellationToken token = TestContext.Current.CancellationToken;
        Assert.True(inside.Wait(TimeSpan.FromSeconds(30), token));

        // Another tree's writer (new names too: it takes the store lock) is not blocked.
        var other = new Thread(() => { for (int i = 0; i < 1000; i++) b.Insert($"fresh{i};z", 1); });
        other.Start();
        Assert.True(other.Join(TimeSpan.FromSeconds(30)), "a writer on tree b waited for tree a's lock");
        Assert.Equal(1000UL, b.Total);
        // Lock-free reads of a's total do not wait either.
        Assert.Equal(1UL, a.Total);

        // A writer on a waits for the reader to finish.
        var same = new Thread(() => a.Insert("x;z", 1));
        same.Start();
        Assert.False(same.Join(TimeSpan.FromMilliseconds(200)), "a writer entered tree a while it was being read");
        release.Set();
        Assert.True(same.Join(TimeSpan.FromSeconds(30)));
        reader.Join();
        Assert.Equal(2UL, a.Total);
    }
}
