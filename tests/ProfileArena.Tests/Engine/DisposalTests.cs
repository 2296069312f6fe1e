using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Engine;

/// <summary>Reads the process-wide native byte counter, so it runs alone.</summary>
[Collection(nameof(ProcessNativeMemory))]
public class DisposalTests
{
    [Fact]
    public void DisposeReturnsEveryNativeByte()
    {
        long start = TreeStore.ProcessNativeBytes;
        var store = new TreeStore();
        var tree = store.CreateTree();
        for (int i = 0; i < 50_000; i++) tree.Insert($"a;b{i % 5000};c{i}", 1);
        Assert.True(store.NativeBytes > 1_000_000);
        Assert.Equal(start + store.NativeBytes, TreeStore.ProcessNativeBytes);
        store.Dispose();
        Assert.Equal(start, TreeStore.ProcessNativeBytes);
        store.Dispose(); // idempotent
        Assert.Equal(start, TreeStore.ProcessNativeBytes);
    }

    [Fact]
    public void EveryMemberThrowsObjectDisposedAfterDispose()
    {
        var store = new TreeStore();
        var tree = store.CreateTree();
        tree.Insert("a;b", 1);
        store.Dispose();
        Assert.Throws<ObjectDisposedException>(() => store.CreateTree());
        Assert.Throws<ObjectDisposedException>(() => store.TreeCount);
        Assert.Throws<ObjectDisposedException>(() => store.NodeCount);
        Assert.Throws<ObjectDisposedException>(() => store.NativeBytes);
        Assert.Throws<ObjectDisposedException>(() => store.SymbolCount);
        Assert.Throws<ObjectDisposedException>(() => tree.Insert("a", 1));
        Assert.Throws<ObjectDisposedException>(() => tree.Insert("a"u8, 1));
        Assert.Throws<ObjectDisposedException>(() => tree.Total);
        Assert.Throws<ObjectDisposedException>(() => tree.NodeCount);
        Assert.Throws<ObjectDisposedException>(() => tree.Iterate((_, _, _) => { }));
        var visitor = new CountingVisitor();
        Assert.Throws<ObjectDisposedException>(() => tree.Iterate(ref visitor));
    }

    private struct CountingVisitor : IStackVisitor
    {
        public long Count;
        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total) => Count++;
    }

    [Fact]
    public void FinalizerFreesAnUndisposedStore()
    {
        long start = TreeStore.ProcessNativeBytes;
        long held = FillAndDrop();
        Assert.True(held > 100_000);
        for (int i = 0; i < 10 && TreeStore.ProcessNativeBytes != start; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.Equal(start, TreeStore.ProcessNativeBytes);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static long FillAndDrop()
    {
        var store = new TreeStore();
        var tree = store.CreateTree();
        for (int i = 0; i < 10_000; i++) tree.Insert($"x;y{i}", 1);
        return store.NativeBytes;
    }
}
