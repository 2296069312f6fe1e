using System.Text;
using ProfileArena.Baseline;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Snapshots;

public class SnapshotTests
{
    /// <summary>A store with real trees, a removed slot, empty names, 0x00/0xFF bytes and a 150 KB name (a multi-chunk run).</summary>
    internal static (TreeStore Store, List<(int Id, BaselineTree Baseline)> Trees) Sample(int files = 3)
    {
        var store = new TreeStore();
        var trees = new List<(int, BaselineTree)>();
        foreach (string path in SharedData.Files("collapsed").Where((_, i) => i % 7 == 0).Take(files))
        {
            var (tree, baseline) = Oracles.FromFile(store, path);
            trees.Add((tree.Id, baseline));
        }
        var removed = store.CreateTree();
        removed.Insert("gone;away", 5);
        var odd = store.CreateTree();
        var oddBaseline = new BaselineTree();
        byte[] longName = new byte[150_000];
        new SplitMix64(5).NextBytes(longName);
        for (int i = 0; i < longName.Length; i++) if (longName[i] == (byte)';') longName[i] = 0xFF;
        byte[][] keys = [[.. "a;;b"u8], [0x00, (byte)';', 0xFF], [.. "x;"u8, .. longName, .. ";y"u8], [.. ""u8], [.. "a;"u8]];
        foreach (var k in keys)
        {
            odd.Insert(k, 7);
            oddBaseline.Insert(k, 7);
        }
        trees.Add((odd.Id, oddBaseline));
        store.Remove(removed);
        return (store, trees);
    }

    private static void AssertContent(TreeStore store, List<(int Id, BaselineTree Baseline)> trees)
    {
        Assert.Equal(trees.Count, store.TreeCount);
        foreach (var (id, baseline) in trees) TreeSnapshot.AssertSame(baseline, store.GetTree(id));
    }

    [Fact]
    public void SaveLoadRoundTripIsExactAndWritable()
    {
        var (store, trees) = Sample();
        using (store)
        {
            byte[] bytes = SnapshotBytes.Of(store);
            using var loaded = TreeStore.Load(new MemoryStream(bytes));
            AssertContent(loaded, trees);
            Assert.Equal(store.NodeCount, loaded.NodeCount);
            Assert.Equal(store.SymbolCount, loaded.SymbolCount);
            Assert.False(loaded.IsReadOnly);
            // Saving the loaded store gives the same bytes (deterministic format).
            Assert.Equal(bytes, SnapshotBytes.Of(loaded));

            // Writable: edge index and symbol table were rebuilt.
            foreach (var (id, baseline) in trees)
            {
                var t = loaded.GetTree(id);
                foreach (var (k, v) in new[] { ("a;;b", 1UL), ("new;frame", 2UL), ("", 3UL) })
                {
                    t.Insert(k, v);
                    baseline.Insert(k, v);
                }
                TreeSnapshot.AssertSame(baseline, t);
            }
            var fresh = loaded.CreateTree(); // reuses the removed slot
            Assert.DoesNotContain(trees, t => t.Id == fresh.Id);
            Assert.True(fresh.Id < trees.Max(t => t.Id), "the removed slot is reused");
            fresh.Insert("z", 1);
            Assert.Equal(trees.Count + 1, loaded.TreeCount);
        }
    }

    [Fact]
    public void FileHelpersWriteByRenameAndOpenSnapshotMapsInPlace()
    {
        var (store, trees) = Sample();
        string dir = Directory.CreateTempSubdirectory("pa-snap").FullName;
        try
        {
            string path = Path.Combine(dir, "store.snap");
            using (store) store.SaveToFile(path);
            Assert.Equal([path], Directory.GetFiles(dir)); // no temporary left behind

            using (var loaded = TreeStore.LoadFile(path)) AssertContent(loaded, trees);

            using (var mapped = TreeStore.OpenSnapshot(path))
            {
                Assert.True(mapped.IsReadOnly);
                // Only directories, records and the symbol hash table are allocated: no node or name bytes.
                Assert.True(mapped.NativeBytes < new FileInfo(path).Length, $"{mapped.NativeBytes} native bytes for a {new FileInfo(path).Length}-byte file");
                AssertContent(mapped, trees);
                var t = mapped.GetTree(trees[0].Id);
                Assert.Throws<InvalidOperationException>(() => t.Insert("a", 1));
                Assert.Throws<InvalidOperationException>(() => mapped.CreateTree());
                Assert.Throws<InvalidOperationException>(() => mapped.Remove(t));
                Assert.Throws<InvalidOperationException>(() => t.Clear());
                Assert.Throws<InvalidOperationException>(() => t.Truncate(3));
                Assert.NotEmpty(t.Top(5, TopBy.Total));
                // Reading from a mapped store into a writable one works (names re-interned).
                using var target = new TreeStore();
                var copy = target.CreateTree();
                copy.MergeFrom(t);
                TreeSnapshot.AssertSame(trees[0].Baseline, copy);
                // A mapped store saves like any other.
                Assert.Equal(File.ReadAllBytes(path), SnapshotBytes.Of(mapped));
                mapped.VerifySnapshot();
            }
            File.Delete(path); // the mapping is gone
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void EmptyStoreRoundTrips()
    {
        using var store = new TreeStore();
        byte[] bytes = SnapshotBytes.Of(store);
        using var loaded = TreeStore.Load(new MemoryStream(bytes));
        Assert.Equal(0, loaded.TreeCount);
        loaded.CreateTree().Insert("a", 1);
    }

    /// <summary>A non-seekable stream that hands out at most 7 bytes per read.</summary>
    private sealed class Trickle(byte[] data) : Stream
    {
        private int _at;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = Math.Min(Math.Min(count, 7), data.Length - _at);
            Array.Copy(data, _at, buffer, offset, n);
            _at += n;
            return n;
        }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Fact]
    public void LoadsFromANonSeekableStreamInSmallReads()
    {
        var (store, trees) = Sample();
        using (store)
        {
            using var loaded = TreeStore.Load(new Trickle(SnapshotBytes.Of(store)));
            AssertContent(loaded, trees);
        }
    }

    [Fact]
    public void LyingLengthsAllocateNothingProportional()
    {
        using var store = new TreeStore();
        store.CreateTree().Insert("a;b", 1);
        byte[] good = SnapshotBytes.Of(store);
        var budget = new TreeStoreOptions { MaxNativeBytes = 4 << 20 }; // a lie would need far more
        foreach (long lie in new[] { 1L << 40, (1L << 32) * 32, 64L << 20 })
        {
            byte[] bad = (byte[])good.Clone();
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bad.AsSpan(64 + 16), lie); // first node section's length
            SnapshotBytes.Reseal(bad);
            var seekable = Assert.Throws<InvalidDataException>(() => TreeStore.Load(new MemoryStream(bad), budget));
            Assert.Contains("byte offset", seekable.Message);
            var streamed = Assert.Throws<InvalidDataException>(() => TreeStore.Load(new Trickle(bad), budget));
            Assert.Contains("byte offset", streamed.Message);
        }
    }

    [Fact]
    public void TruncatedFilesAreRejectedWithAnOffset()
    {
        var (store, _) = Sample(1);
        using (store)
        {
            byte[] bytes = SnapshotBytes.Of(store);
            for (int cut = 0; cut < bytes.Length; cut += cut < 512 ? 1 : 61)
            {
                var e = Assert.Throws<InvalidDataException>(() => TreeStore.Load(new MemoryStream(bytes, 0, cut)));
                Assert.Contains("byte offset", e.Message);
            }
        }
    }

    [Fact]
    public void StructuralDamageIsNamed()
    {
        using var store = new TreeStore();
        var t = store.CreateTree();
        t.Insert("a;b", 1);
        t.Insert("a;c", 1);
        byte[] good = SnapshotBytes.Of(store);
        const int nodes = 128; // payload of the first node section: header 64 + section header 64
        void Expect(Action<byte[]> damage, string fragment, bool mappedToo = true)
        {
            byte[] bad = (byte[])good.Clone();
            damage(bad);
            SnapshotBytes.Reseal(bad);
            var e = Assert.Throws<InvalidDataException>(() => TreeStore.Load(new MemoryStream(bad)));
            Assert.Contains(fragment, e.Message);
            Assert.Contains("byte offset", e.Message);
            if (!mappedToo) return;
            string path = Path.GetTempFileName();
            try
            {
                File.WriteAllBytes(path, bad);
                var m = Assert.Throws<InvalidDataException>(() => { using var s = TreeStore.OpenSnapshot(path); s.GetTree(0).Iterate((_, _, _) => { }); });
                Assert.Contains(fragment, m.Message);
            }
            finally { File.Delete(path); }
        }
        // Node 1 = a (parent 0), 2 = b, 3 = c. Fields: self 0, symbol 8, parent 12, first child 16, next sibling 20.
        // a's list is c (3) → b (2), newest first.
        Expect(b => b[nodes + 32 * 2 + 20] = 3, "linked twice");              // b → c: a cycle
        Expect(b => b[nodes + 32 * 1 + 16] = 9, "beyond the tree");           // a's first child out of range
        Expect(b => b[nodes + 32 * 2 + 12] = 2, "names parent 2");   // b is its own parent
        Expect(b => b[nodes + 32 * 2 + 8] = 200, "beyond the");               // symbol out of range
        Expect(b => b[nodes + 32 * 2 + 0] = 9, "not the sum");                // self changed, total not
        Expect(b => b[nodes + 32 * 3 + 8] = b[nodes + 32 * 2 + 8], "repeats a sibling", mappedToo: false); // harmless to readers
        Expect(b => { b[nodes + 32 * 1 + 16] = 3; b[nodes + 32 * 3 + 20] = 0; }, "in no child list"); // b dropped from a's list
        Expect(b => b[8] = 2, "version 2");
        Expect(b => b[nodes - 64 + 16] = 0xFF, "");
    }

    [Fact]
    public void ChecksumsCatchBitFlipsInEverySection()
    {
        var (store, _) = Sample(1);
        using (store)
        {
            byte[] bytes = SnapshotBytes.Of(store);
            var rng = new SplitMix64(99);
            for (int i = 0; i < 2000; i++)
            {
                byte[] bad = (byte[])bytes.Clone();
                int at = (int)rng.NextBelow((ulong)bad.Length);
                bad[at] ^= (byte)(1 << (int)rng.NextBelow(8));
                var e = Assert.Throws<InvalidDataException>(() => TreeStore.Load(new MemoryStream(bad)));
                Assert.Contains("byte offset", e.Message);
            }
        }
    }
}
