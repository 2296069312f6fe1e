using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Core;

public class LimitsTests
{
    [Fact]
    public void NodeCapRefusesTheWholeInsertAndTheStoreStaysUsable()
    {
        using var store = new TreeStore(new TreeStoreOptions { MaxNodes = 10 });
        var tree = store.CreateTree();           // 1 node (root)
        tree.Insert("a;b;c", 1);                 // 4
        var before = TreeSnapshot.Of(tree);
        long symbols = store.SymbolCount, native = store.NativeBytes;
        var ex = Assert.Throws<StoreLimitExceededException>(() => tree.Insert("a;x;y;z;w;v;u;t", 5)); // needs 7 new
        Assert.Equal(StoreLimit.Nodes, ex.Limit);
        Assert.Contains("MaxNodes", ex.Message);
        Assert.Equal(before, TreeSnapshot.Of(tree));
        Assert.Equal(4, store.NodeCount);
        Assert.Equal(symbols, store.SymbolCount); // no name of the refused key was interned
        Assert.True(store.NativeBytes >= native);
        tree.Insert("a;x;y;z", 2);                // 3 new: exactly fits? 4 + 3 = 7
        tree.Insert("a;b;c", 1);                  // existing path: no new node
        Assert.Equal(7, store.NodeCount);
        Assert.Equal(4UL, tree.Total);
        var tree2 = store.CreateTree();           // 8
        tree2.Insert("q;r", 1);                   // 10
        Assert.Throws<StoreLimitExceededException>(() => store.CreateTree());
        Assert.Equal(2, store.TreeCount);
        Assert.Equal(10, store.NodeCount);
    }

    [Fact]
    public void SymbolByteCapRollsBackNamesInternedEarlierInTheSameKey()
    {
        using var store = new TreeStore(new TreeStoreOptions { MaxSymbolBytes = 20 });
        var tree = store.CreateTree();
        tree.Insert("aaaa;bbbb", 1);             // 8 bytes
        var before = TreeSnapshot.Of(tree);
        long symbols = store.SymbolCount;
        // 4 + 4 + 10 bytes would pass 20 only at the third name: the first two must be rolled back.
        var ex = Assert.Throws<StoreLimitExceededException>(() => tree.Insert("cccc;dddd;eeeeeeeeee", 1));
        Assert.Equal(StoreLimit.SymbolBytes, ex.Limit);
        Assert.Equal(symbols, store.SymbolCount);
        Assert.Equal(before, TreeSnapshot.Of(tree));
        Assert.Equal(3, store.NodeCount);
        tree.Insert("aaaa;cccc;dddd", 2);        // 8 more bytes: 16 ≤ 20
        tree.Insert("aaaa;cccc;cccc;aaaa", 1);   // repeated names cost nothing
        Assert.Equal(4UL, tree.Total);
        Assert.Contains(new VisitedNode("aaaa;cccc;dddd", 2, 2), TreeSnapshot.Of(tree));
    }

    [Fact]
    public void NativeBudgetRefusesGrowthCleanly()
    {
        using var store = new TreeStore(new TreeStoreOptions { MaxNativeBytes = 400_000 });
        var tree = store.CreateTree();
        int inserted = 0;
        StoreLimitExceededException? ex = null;
        for (int i = 0; i < 100_000 && ex == null; i++)
        {
            var before = store.NodeCount;
            try { tree.Insert($"main;f{i};g{i}", 1); inserted++; }
            catch (StoreLimitExceededException e) { ex = e; Assert.Equal(before, store.NodeCount); }
        }
        Assert.NotNull(ex);
        Assert.Equal(StoreLimit.NativeBytes, ex!.Limit);
        Assert.True(store.NativeBytes <= 400_000);
        Assert.Equal((ulong)inserted, tree.Total);
        Assert.Equal(1 + 1 + 2 * inserted, tree.NodeCount);
        tree.Insert("main;f0;g0", 1); // still usable for paths that exist
        Assert.Equal((ulong)inserted + 1, tree.Total);
    }

    [Fact]
    public void InvalidOptionsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TreeStore(new TreeStoreOptions { MaxNodes = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TreeStore(new TreeStoreOptions { MaxNativeBytes = 0 }));
        Assert.Throws<ArgumentNullException>(() => new TreeStore(null!));
    }

    [Fact]
    public void DefaultHandleIsRejectedClearly()
    {
        ProfileTree tree = default;
        var ex = Assert.Throws<InvalidOperationException>(() => tree.Insert("a", 1));
        Assert.Contains("default", ex.Message);
        Assert.Throws<InvalidOperationException>(() => tree.Total);
        Assert.Throws<InvalidOperationException>(() => tree.Iterate((_, _, _) => { }));
    }

    [Fact]
    public void VisitorCannotInsertIntoTheTreeItIterates()
    {
        using var store = new TreeStore();
        var tree = store.CreateTree();
        var other = store.CreateTree();
        tree.Insert("a;b", 1);
        int visited = 0;
        tree.Iterate((stack, _, _) =>
        {
            visited++;
            Assert.Contains("iterating", Assert.Throws<InvalidOperationException>(() => tree.Insert("c", 1)).Message);
            // Another tree: refused too (issue 14: writes nested in visitors could deadlock), naming the rule.
            Assert.Contains("may be read", Assert.Throws<InvalidOperationException>(() => other.Insert("q", 1)).Message);
            tree.Iterate((_, _, _) => { }); // nested read of the same tree: fine
            other.Iterate((_, _, _) => { }); // and of another: fine
        });
        Assert.Equal(2, visited);
        Assert.Equal(1UL, tree.Total);
        Assert.Equal(0UL, other.Total);
    }
}

[CollectionDefinition(nameof(ProcessNativeMemory), DisableParallelization = true)]
public sealed class ProcessNativeMemory;

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

/// <summary>Large stores take their slabs from 2 MiB huge-page blocks; the accounting must stay exact.</summary>
[Collection(nameof(ProcessNativeMemory))]
public class HugePagePoolTests
{
    private static void Fill(ProfileTree tree, int paths, int seed)
    {
        var rng = new ProfileArena.Workloads.SplitMix64((ulong)seed);
        var sink = new Sink(tree);
        ProfileArena.Workloads.TakeHome.GenerateTree(ref rng, paths, 100, ref sink);
    }

    private readonly struct Sink(ProfileTree tree) : ProfileArena.Workloads.IKeySink
    {
        public void Insert(ReadOnlySpan<byte> key, ulong value) => tree.Insert(key, value);
    }

    [Fact]
    public void PooledSlabsAreReusedAfterRemoveAndReturnedOnDispose()
    {
        long start = TreeStore.ProcessNativeBytes;
        var store = new TreeStore();
        var keep = store.CreateTree();
        Fill(keep, 300, 1);                      // ≈ 30,000 nodes and names: past the pool's threshold
        var scratch = store.CreateTree();
        Fill(scratch, 200, 2);
        var expected = TreeSnapshot.Of(keep);
        long full = store.NativeBytes;
        Assert.True(full > 8 * 1024 * 1024, $"{full} bytes: the test needs a store past the pool threshold");
        Assert.Equal(start + full, TreeStore.ProcessNativeBytes);

        store.Remove(scratch);                   // its node slabs go back to the pool, still held by the store
        long afterRemove = store.NativeBytes;
        Assert.True(afterRemove <= full);
        var again = store.CreateTree();
        var baseline = new ProfileArena.Baseline.BaselineTree();
        var rng = new ProfileArena.Workloads.SplitMix64(3);
        for (int i = 0; i < 20_000; i++)
        {
            string key = $"r;{rng.NextBelow(50)};{i}";
            again.Insert(key, 1);
            baseline.Insert(key, 1);
        }
        TreeSnapshot.AssertSame(baseline, again);
        Assert.Equal(expected, TreeSnapshot.Of(keep)); // reused slabs never alias live ones
        Assert.Equal(start + store.NativeBytes, TreeStore.ProcessNativeBytes);

        store.Dispose();
        Assert.Equal(start, TreeStore.ProcessNativeBytes);
    }

    [Fact]
    public void PoolBlocksRespectTheBudget()
    {
        using var store = new TreeStore(new TreeStoreOptions { MaxNativeBytes = 7 * 1024 * 1024 });
        var tree = store.CreateTree();
        StoreLimitExceededException? refused = null;
        int paths = 0;
        for (; paths < 1000 && refused == null; paths++)
        {
            long nodes = store.NodeCount;
            try { Fill(tree, 1, 100 + paths); }
            catch (StoreLimitExceededException e) { refused = e; Assert.True(store.NodeCount >= nodes); }
        }
        Assert.NotNull(refused);
        Assert.Equal(StoreLimit.NativeBytes, refused!.Limit);
        Assert.True(store.NativeBytes <= 7 * 1024 * 1024);
        tree.Insert("root", 1); // still usable
    }
}
