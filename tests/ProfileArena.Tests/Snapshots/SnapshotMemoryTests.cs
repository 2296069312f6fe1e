using System.Text;
using ProfileArena.Baseline;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Snapshots;

/// <summary>Tests that read the process-wide native byte counter: run alone, like the core disposal tests.</summary>
[Collection(nameof(ProfileArena.Tests.Support.ProcessNativeMemory))]
public class SnapshotMemoryTests
{
    [Fact]
    public void LoadOverBudgetThrowsAndLeavesNothing()
    {
        var (store, _) = SnapshotTests.Sample();
        using (store)
        {
            byte[] bytes = SnapshotBytes.Of(store);
            long before = TreeStore.ProcessNativeBytes;
            var e = Assert.Throws<StoreLimitExceededException>(() => TreeStore.Load(new MemoryStream(bytes), new TreeStoreOptions { MaxNativeBytes = store.NativeBytes / 2 }));
            Assert.Equal(StoreLimit.NativeBytes, e.Limit);
            Assert.Equal(before, TreeStore.ProcessNativeBytes);
            var n = Assert.Throws<StoreLimitExceededException>(() => TreeStore.Load(new MemoryStream(bytes), new TreeStoreOptions { MaxNodes = store.NodeCount - 1 }));
            Assert.Equal(StoreLimit.Nodes, n.Limit);
            Assert.Equal(before, TreeStore.ProcessNativeBytes);
            // With room it loads, and NativeBytes is exactly what the allocator holds for the store.
            using var loaded = TreeStore.Load(new MemoryStream(bytes), new TreeStoreOptions { MaxNativeBytes = store.NativeBytes * 2 });
            Assert.Equal(before + loaded.NativeBytes, TreeStore.ProcessNativeBytes);
        }
    }

    [Fact]
    public void NativeBytesTracksEveryOperation()
    {
        long process = TreeStore.ProcessNativeBytes;
        using (var store = new TreeStore())
        {
            var a = store.CreateTree();
            for (int i = 0; i < 2000; i++) a.Insert($"m;{i % 50};{i}", 1);
            Assert.Equal(process + store.NativeBytes, TreeStore.ProcessNativeBytes);
            var b = a.Clone();
            b.Truncate(10);
            a.Clear();
            Assert.Equal(process + store.NativeBytes, TreeStore.ProcessNativeBytes);
            store.Remove(b);
            Assert.Equal(process + store.NativeBytes, TreeStore.ProcessNativeBytes);
        }
        Assert.Equal(process, TreeStore.ProcessNativeBytes);
    }

    [Fact]
    public void MappedStoreUnmapsAndFreesOnDispose()
    {
        var (store, trees) = SnapshotTests.Sample();
        string path = Path.GetTempFileName();
        try
        {
            using (store) store.SaveToFile(path);
            long before = TreeStore.ProcessNativeBytes;
            var mapped = TreeStore.OpenSnapshot(path, verifyAll: true);
            Assert.Equal(before + mapped.NativeBytes, TreeStore.ProcessNativeBytes);
            mapped.Dispose();
            Assert.Equal(before, TreeStore.ProcessNativeBytes);
            Assert.Throws<ObjectDisposedException>(() => mapped.GetTree(trees[0].Id));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
