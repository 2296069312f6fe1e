using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Engine;

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
