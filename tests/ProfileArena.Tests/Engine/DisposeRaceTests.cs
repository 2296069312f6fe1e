using System.Text;
using ProfileArena.Baseline;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Engine;

/// <summary>Dispose racing with every kind of call: in-flight calls finish or throw ObjectDisposedException; nothing leaks.</summary>
[Collection(nameof(ProfileArena.Tests.Support.ProcessNativeMemory))]
public class DisposeRaceTests
{
    [Fact]
    public void DisposeRacingWithReadersWritersAndSnapshotsIsSafe()
    {
        long start = TreeStore.ProcessNativeBytes;
        string path = Path.GetTempFileName();
        try
        {
            using (var seed = new TreeStore())
            {
                var t = seed.CreateTree();
                for (int i = 0; i < 2000; i++) t.Insert($"s;{i % 40};{i}", 1);
                seed.SaveToFile(path);
            }
            for (int round = 0; round < 24; round++)
            {
                TreeStore store = round % 3 == 2 ? TreeStore.OpenSnapshot(path) : TreeStore.LoadFile(path);
                var trees = store.GetTrees();
                var failures = new List<Exception>();
                int started = 0;
                var threads = Enumerable.Range(0, 4).Select(k => new Thread(() =>
                {
                    Interlocked.Increment(ref started);
                    try
                    {
                        for (int i = 0; ; i++)
                        {
                            var tree = trees[0];
                            switch ((k + i) % 6)
                            {
                                case 0: tree.Iterate((_, _, _) => { }); break;
                                case 1: if (!store.IsReadOnly) tree.Insert($"r;{i}", 1); else _ = tree.Total; break;
                                case 2: tree.Top(3, TopBy.Self); break;
                                case 3: _ = tree.NodeCount + store.NodeCount; break;
                                case 4: store.Save(Stream.Null); break;
                                default: if (!store.IsReadOnly) store.Remove(store.CreateTree()); else _ = store.GetTrees(); break;
                            }
                        }
                    }
                    catch (ObjectDisposedException) { } // the only way out
                    catch (Exception e) { lock (failures) failures.Add(e); }
                })).ToList();
                foreach (var th in threads) th.Start();
                while (Volatile.Read(ref started) < threads.Count) Thread.Yield();
                Thread.Sleep(round % 4);
                store.Dispose();
                foreach (var th in threads) Assert.True(th.Join(TimeSpan.FromSeconds(60)), "a call hung after Dispose");
                Assert.Empty(failures);
                Assert.Throws<ObjectDisposedException>(() => trees[0].Total);
                store.Dispose(); // idempotent
            }
            Assert.Equal(start, TreeStore.ProcessNativeBytes);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
