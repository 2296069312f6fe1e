using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ProfileArena.Baseline;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Engine;

/// <summary>Issue 14 (engine): bounded stacks, refused writes that change nothing, a version that cannot wrap.</summary>
public class HostileInputTests
{
    private static string Chain(int frames, string name = "f") => string.Join(';', Enumerable.Repeat(name, frames));

    [Fact]
    public void AKeyOfIntMaxValueBytesIsRefusedByItsLengthBeforeAnyByteIsRead()
    {
        // Issue 14 item 5: int.MaxValue bytes of ';' used to overflow the segment count and read
        // PathNodes[int.MaxValue]. The bound is checked on the length alone, so the span's pages
        // are never touched (the allocation is virtual memory only).
        nint p = Marshal.AllocHGlobal(int.MaxValue);
        try
        {
            using var store = new TreeStore();
            var tree = store.CreateTree();
            tree.Insert("a;b", 1);
            long native = store.NativeBytes;
            var ex = Assert.Throws<StoreLimitExceededException>(() => tree.Insert(NativeSpan(p, int.MaxValue), 1));
            Assert.Equal(StoreLimit.StackBytes, ex.Limit);
            Assert.Contains("MaxStackBytes", ex.Message);
            Assert.Equal(native, store.NativeBytes);
            Assert.Equal(1UL, tree.Total);
        }
        finally
        {
            Marshal.FreeHGlobal(p);
        }
    }

    /// <summary>A span over native memory without unsafe code in the tests (the engine receives exactly what a caller's native buffer gives).</summary>
    private static ReadOnlySpan<byte> NativeSpan(nint address, int length) =>
        MemoryMarshal.CreateReadOnlySpan(ref Unsafe.AddByteOffset(ref Unsafe.NullRef<byte>(), address), length);

    [Fact]
    public void StackBytesAndFramesAreBoundedExactlyAndARefusedKeyChangesNothing()
    {
        using var store = new TreeStore(new TreeStoreOptions { MaxStackBytes = 1000, MaxStackFrames = 100 });
        var tree = store.CreateTree();
        var baseline = new BaselineTree();
        tree.Insert("warm;up", 1); baseline.Insert("warm;up", 1);
        TreeSnapshot.AssertSame(baseline, tree);
        long native = store.NativeBytes, symbols = store.SymbolCount, nodes = store.NodeCount;

        // The same overflow class as int.MaxValue bytes of ';', at a small cap: only separators.
        var sep = Assert.Throws<StoreLimitExceededException>(() => tree.Insert(new string(';', 1001), 1));
        Assert.Equal(StoreLimit.StackBytes, sep.Limit);
        var frames = Assert.Throws<StoreLimitExceededException>(() => tree.Insert(new string(';', 100), 1)); // 101 empty frames
        Assert.Equal(StoreLimit.StackFrames, frames.Limit);
        Assert.Contains("MaxStackFrames", frames.Message);
        // Reusing the cached prefix must not skip the frame check.
        tree.Insert(Chain(99), 1); baseline.Insert(Chain(99), 1);
        Assert.Throws<StoreLimitExceededException>(() => tree.Insert(Chain(101), 1));
        long afterChain = store.NativeBytes;
        Assert.Throws<StoreLimitExceededException>(() => tree.Insert(Chain(99) + ";g;h", 1));
        Assert.Equal(afterChain, store.NativeBytes);
        Assert.True(native <= afterChain);

        // Exactly at the bounds: accepted.
        tree.Insert(new string(';', 99), 2); baseline.Insert(new string(';', 99), 2);   // 100 frames
        string longest = new string('x', 1000);
        tree.Insert(longest, 3); baseline.Insert(longest, 3);                          // 1000 bytes
        Assert.Throws<StoreLimitExceededException>(() => tree.Insert(longest + "x", 1));
        TreeSnapshot.AssertSame(baseline, tree);
        Assert.True(store.SymbolCount > symbols && store.NodeCount > nodes);
    }

    [Fact]
    public void OptionsRefuseStackBoundsThatCouldOverflowAnInt()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TreeStore(new TreeStoreOptions { MaxStackBytes = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TreeStore(new TreeStoreOptions { MaxStackBytes = TreeStoreOptions.HardMaxStackBytes + 1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TreeStore(new TreeStoreOptions { MaxStackFrames = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TreeStore(new TreeStoreOptions { MaxStackFrames = int.MaxValue }));
        var defaults = new TreeStoreOptions();
        Assert.Equal(16 << 20, defaults.MaxStackBytes);
        Assert.Equal(1 << 20, defaults.MaxStackFrames);
    }

    [Fact]
    public void MergeFromAStoreWithLooserBoundsRefusesPathsTheTargetCannotHoldAndChangesNothing()
    {
        using var loose = new TreeStore();
        var source = loose.CreateTree();
        source.Insert("a;b", 1);
        source.Insert(Chain(50, "longname"), 2); // 50 frames, 449 bytes

        using var strict = new TreeStore(new TreeStoreOptions { MaxStackBytes = 448, MaxStackFrames = 1000 });
        var target = strict.CreateTree();
        target.Insert("a;c", 5);
        var before = TreeSnapshot.Of(target);
        long native = strict.NativeBytes, symbols = strict.SymbolCount;
        Assert.Equal(StoreLimit.StackBytes, Assert.Throws<StoreLimitExceededException>(() => target.MergeFrom(source)).Limit);
        using var shallow = new TreeStore(new TreeStoreOptions { MaxStackFrames = 49 });
        Assert.Equal(StoreLimit.StackFrames, Assert.Throws<StoreLimitExceededException>(() => shallow.CreateTree().MergeFrom(source)).Limit);
        Assert.Equal(before, TreeSnapshot.Of(target));
        Assert.Equal(native, strict.NativeBytes);
        Assert.Equal(symbols, strict.SymbolCount);

        using var exact = new TreeStore(new TreeStoreOptions { MaxStackBytes = 449, MaxStackFrames = 50 });
        var copy = exact.CreateTree();
        copy.MergeFrom(source);
        Assert.Equal(TreeSnapshot.Of(source), TreeSnapshot.Of(copy));
    }

    [Fact]
    public void TruncateRefusesAnOtherNodeThatWouldPassMaxStackBytes()
    {
        // "p" + ";b" fits 1000 bytes; "p" + ";other" does not when p is 996 bytes long.
        using var store = new TreeStore(new TreeStoreOptions { MaxStackBytes = 1000 });
        var tree = store.CreateTree();
        string p = new string('p', 996);
        tree.Insert(p + ";b", 1);
        tree.Insert(p + ";c", 100);
        var before = TreeSnapshot.Of(tree);
        long native = store.NativeBytes;
        Assert.Equal(StoreLimit.StackBytes, Assert.Throws<StoreLimitExceededException>(() => tree.TruncateBelow(50)).Limit);
        Assert.Equal(before, TreeSnapshot.Of(tree));
        Assert.Equal(native, store.NativeBytes);

        // With room for "other" the same fold works.
        using var roomy = new TreeStore(new TreeStoreOptions { MaxStackBytes = 1003 });
        var t = roomy.CreateTree();
        t.Insert(p + ";b", 1);
        t.Insert(p + ";c", 100);
        t.TruncateBelow(50);
        Assert.Contains(TreeSnapshot.Of(t), n => n.Stack == p + ";other" && n.Self == 1);
    }

    [Fact]
    public void AVersionPast2To32StillInvalidatesTheCachedPlan()
    {
        // Issue 14 item 9: a 32-bit version matched a plan 2^32 writes old. The hook puts the counter
        // where 2^32 − 1 more writes would have left it, then one real write follows.
        using var store = new TreeStore();
        var tree = store.CreateTree();
        tree.Insert("a;b", 1);
        Assert.Equal(1UL, TreeSnapshot.Of(tree).Single(n => n.Stack == "a;b").Self); // plan cached at version v
        tree.SetWriteVersionForTests((1UL << 32) - 1);
        Assert.Equal(1UL, TreeSnapshot.Of(tree).Single(n => n.Stack == "a;b").Self); // plan rebuilt at 2^32 − 1
        tree.Insert("a;b", 1); // version 2^32: equal to 0 in 32 bits
        var node = TreeSnapshot.Of(tree).Single(n => n.Stack == "a;b");
        Assert.Equal(2UL, node.Self);
        Assert.Equal(2UL, node.Total);

        // And a plan built at version 2^32 + 5 is not taken for version 5.
        tree.SetWriteVersionForTests(5);
        tree.Insert("a;b", 1);                     // version 6; plan (if cached) at 2^32
        tree.SetWriteVersionForTests((1UL << 32) + 6);
        Assert.Equal(3UL, TreeSnapshot.Of(tree).Single(n => n.Stack == "a;b").Self); // plan at 2^32 + 6
        tree.SetWriteVersionForTests(5);
        tree.Insert("a;b", 1);                     // version 6 again, data changed
        Assert.Equal(4UL, TreeSnapshot.Of(tree).Single(n => n.Stack == "a;b").Self);
    }

    [Fact]
    public void ARefusedInsertOrMergeLeavesNativeBytesExactlyAsBefore()
    {
        // Issue 14 item 11: a refused 5,000-deep key grew NativeBytes by 103,889 B, a refused 1 MB key by 1 MB.
        string deep = string.Join(';', Enumerable.Range(0, 5000).Select(i => $"frame{i}"));
        string huge = new string('n', 1 << 20);
        var cases = new (string Name, TreeStoreOptions Options, string Key, StoreLimit Limit)[]
        {
            ("nodes", new TreeStoreOptions { MaxNodes = 100 }, deep, StoreLimit.Nodes),
            ("symbol bytes", new TreeStoreOptions { MaxSymbolBytes = 20_000 }, deep, StoreLimit.SymbolBytes),
            ("1 MB name", new TreeStoreOptions { MaxSymbolBytes = 1 << 19 }, huge, StoreLimit.SymbolBytes),
        };
        foreach (var c in cases)
        {
            using var store = new TreeStore(c.Options);
            var tree = store.CreateTree();
            var baseline = new BaselineTree();
            tree.Insert("a;b;c", 1); baseline.Insert("a;b;c", 1);
            long native = store.NativeBytes;
            var ex = Assert.Throws<StoreLimitExceededException>(() => tree.Insert(c.Key, 1));
            Assert.Equal(c.Limit, ex.Limit);
            Assert.True(native == store.NativeBytes, $"{c.Name}: {store.NativeBytes - native} bytes kept by a refused insert");

            // The same key through MergeFrom from an unlimited store.
            using var source = new TreeStore();
            var s = source.CreateTree();
            s.Insert(c.Key, 1);
            Assert.Equal(c.Limit, Assert.Throws<StoreLimitExceededException>(() => tree.MergeFrom(s)).Limit);
            Assert.True(native == store.NativeBytes, $"{c.Name}: {store.NativeBytes - native} bytes kept by a refused merge");

            tree.Insert("a;b;d", 2); baseline.Insert("a;b;d", 2);
            TreeSnapshot.AssertSame(baseline, tree);
        }
    }

    [Fact]
    public void UnderATightBudgetEveryInsertEitherSucceedsOrLeavesNativeBytesExactlyAsBefore()
    {
        // Budget refusals can come from any allocation (cache, node slabs, edge buckets, symbol slots,
        // entries, name chunks): walk the budget up so that each of them is the one refused somewhere.
        var rng = new Random(14);
        int refused = 0;
        for (int round = 0; round < 40; round++)
        {
            long budget = 20_000 + round * 6_000;
            using var store = new TreeStore(new TreeStoreOptions { MaxNativeBytes = budget });
            var tree = store.CreateTree();
            var baseline = new BaselineTree();
            for (int i = 0; i < 400; i++)
            {
                int depth = rng.Next(1, i % 50 == 49 ? 3000 : 40);
                string key = string.Join(';', Enumerable.Range(0, depth).Select(_ => $"n{rng.Next(5000)}"));
                long before = store.NativeBytes;
                try
                {
                    tree.Insert(key, 1);
                    baseline.Insert(key, 1);
                }
                catch (StoreLimitExceededException ex)
                {
                    Assert.Equal(StoreLimit.NativeBytes, ex.Limit);
                    Assert.True(before == store.NativeBytes, $"budget {budget}, insert {i}: {store.NativeBytes - before} bytes kept");
                    refused++;
                }
            }
            TreeSnapshot.AssertSame(baseline, tree);
        }
        Assert.True(refused > 100, $"only {refused} refusals: the budgets do not exercise the undo");
    }

    [Fact]
    public void ADefaultHandleThrowsOnIdLikeEveryOtherMember()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => default(ProfileTree).Id);
        Assert.Contains("default handle", ex.Message);
        Assert.Throws<InvalidOperationException>(() => default(ProfileTree).Total);
        using var store = new TreeStore();
        Assert.Equal(0, store.CreateTree().Id);
    }
}
