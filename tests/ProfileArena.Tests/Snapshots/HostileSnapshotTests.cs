using System.Buffers.Binary;
using System.Text;
using ProfileArena.Snapshots;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Snapshots;

/// <summary>Issue 14: snapshots crafted to pass every checksum must still be bounded by validation.</summary>
public class HostileSnapshotTests
{
    /// <summary>Payload offset of the first section of <paramref name="kind"/>, walking the section headers.</summary>
    private static long SectionPayload(byte[] file, SectionKind kind)
    {
        const int B = SnapshotFormat.BlockSize;
        long at = B;
        while (at + B <= file.Length)
        {
            uint k = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan((int)at + 4));
            long length = BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan((int)at + 16));
            if (k == (uint)kind) return at + B;
            at += B + length + SnapshotFormat.Pad(length);
        }
        throw new InvalidOperationException($"no {kind} section");
    }

    /// <summary>
    /// The reproduction of issue 14 item 1: tree 0 a chain of 34,000 "A", tree 1 one 65,000-byte name;
    /// symbol "A" is pointed at the long name minus its last byte and every checksum recomputed. Each
    /// path of tree 0 would then be up to 34,000 × 65,000 bytes (2.2 GB, past int.MaxValue).
    /// </summary>
    private static byte[] CraftedLongPathSnapshot()
    {
        using var store = new TreeStore();
        var chain = store.CreateTree();
        chain.Insert(string.Join(';', Enumerable.Repeat("A", 34_000)), 1);
        var wide = store.CreateTree();
        wide.Insert(new string('B', 65_000), 1);
        byte[] file = SnapshotBytes.Of(store);

        long symbols = SectionPayload(file, SectionKind.Symbols);
        // Ids: 0 = "", 1 = "A" (interned first), 2 = the long name.
        Span<byte> a = file.AsSpan((int)symbols + 1 * SnapshotFormat.SymbolEntrySize, 8);
        ReadOnlySpan<byte> b = file.AsSpan((int)symbols + 2 * SnapshotFormat.SymbolEntrySize, 8);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(a[4..]));
        Assert.Equal(65_000u, BinaryPrimitives.ReadUInt32LittleEndian(b[4..]));
        BinaryPrimitives.WriteUInt32LittleEndian(a, BinaryPrimitives.ReadUInt32LittleEndian(b));
        BinaryPrimitives.WriteUInt32LittleEndian(a[4..], 64_999);
        // The symbols header's aux is Σ name lengths: keep it consistent so only the bound can refuse.
        long header = symbols - SnapshotFormat.BlockSize;
        ulong aux = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan((int)header + 32));
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan((int)header + 32), aux - 1 + 64_999);
        SnapshotBytes.Reseal(file);
        return file;
    }

    [Fact]
    public void ACraftedSnapshotWithPathsPastTheStackBoundIsRefusedByLoadAndByOpenSnapshot()
    {
        byte[] file = CraftedLongPathSnapshot();
        // Even the largest bound the options accept (1 GiB) is below 2.2 GB.
        foreach (var options in new[] { new TreeStoreOptions(), new TreeStoreOptions { MaxStackBytes = TreeStoreOptions.HardMaxStackBytes } })
        {
            var ex = Assert.Throws<StoreLimitExceededException>(() => TreeStore.Load(new MemoryStream(file), options));
            Assert.Equal(StoreLimit.StackBytes, ex.Limit);
            Assert.Contains("snapshot byte offset", ex.Message);
        }

        string dir = Directory.CreateTempSubdirectory("pa-hostile").FullName;
        try
        {
            string path = Path.Combine(dir, "crafted.snap");
            File.WriteAllBytes(path, file);
            var ex = Assert.Throws<StoreLimitExceededException>(() => TreeStore.OpenSnapshot(path, verifyAll: true));
            Assert.Equal(StoreLimit.StackBytes, ex.Limit);
            // Lazily: opening succeeds (headers only), the first use of the tree refuses it, every time.
            using var mapped = TreeStore.OpenSnapshot(path);
            for (int attempt = 0; attempt < 2; attempt++)
            {
                Assert.Equal(StoreLimit.StackBytes, Assert.Throws<StoreLimitExceededException>(() => mapped.GetTree(0).Iterate((_, _, _) => { })).Limit);
                Assert.Equal(StoreLimit.StackBytes, Assert.Throws<StoreLimitExceededException>(() => mapped.GetTree(0).Top(1, TopBy.Total)).Limit);
            }
            // The other tree is fine and stays usable.
            Assert.Single(mapped.GetTree(1).Top(1, TopBy.Total));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SnapshotValidationEnforcesTheLoadingStoresStackBoundsExactly(bool mapped)
    {
        using var store = new TreeStore();
        var tree = store.CreateTree();
        string deep = string.Join(';', Enumerable.Range(0, 300).Select(i => $"f{i % 10}")); // 300 frames, 899 bytes
        tree.Insert(deep, 3);
        tree.Insert("x;y", 1);
        byte[] file = SnapshotBytes.Of(store);
        int bytes = Encoding.UTF8.GetByteCount(deep);
        Assert.Equal(899, bytes);

        string dir = Directory.CreateTempSubdirectory("pa-hostile").FullName;
        try
        {
            string path = Path.Combine(dir, "deep.snap");
            File.WriteAllBytes(path, file);
            TreeStore Open(TreeStoreOptions o) => mapped ? TreeStore.OpenSnapshot(path, verifyAll: true, o) : TreeStore.Load(new MemoryStream(file), o);

            using (var fits = Open(new TreeStoreOptions { MaxStackBytes = bytes, MaxStackFrames = 300 }))
                Assert.Equal(4UL, fits.GetTree(0).Total);
            var b = Assert.Throws<StoreLimitExceededException>(() => Open(new TreeStoreOptions { MaxStackBytes = bytes - 1 }));
            Assert.Equal(StoreLimit.StackBytes, b.Limit);
            var f = Assert.Throws<StoreLimitExceededException>(() => Open(new TreeStoreOptions { MaxStackFrames = 299 }));
            Assert.Equal(StoreLimit.StackFrames, f.Limit);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void StaleTempFilesOfAKilledSaveAreRemovedAtTheNextSaveOrOpenAndNothingElse()
    {
        // Issue 14 item 11: kill -9 during SaveToFile left *.tmp files (1.6 GB after 13 kills) that nothing removed.
        string dir = Directory.CreateTempSubdirectory("pa-hostile").FullName;
        try
        {
            string path = Path.Combine(dir, "store.snap");
            using var store = new TreeStore();
            store.CreateTree().Insert("a;b", 1);
            store.SaveToFile(path);

            const int deadPid = 4_194_305; // above Linux's largest pid_max: never a running process
            string Temp(int pid, string name = "store.snap") => Path.Combine(dir, $".{name}.{pid}.{Guid.NewGuid():N}.tmp");
            string stale1 = Temp(deadPid), stale2 = Temp(deadPid + 1);
            string ownLive = Temp(Environment.ProcessId);          // a save in flight in this process
            string lockedByOther = Temp(deadPid + 2);              // a live writer this process cannot see (other PID namespace)
            string[] unrelated =
            [
                Path.Combine(dir, ".store.snap.tmp"),
                Path.Combine(dir, $".store.snap.{deadPid}.not-a-guid.tmp"),
                Path.Combine(dir, $".store.snap.{deadPid}.{Guid.NewGuid():N}.tmp.keep"),
                Temp(deadPid, "other.snap"),
                Path.Combine(dir, $"store.snap.{deadPid}.{Guid.NewGuid():N}.tmp"),
            ];
            foreach (string f in new[] { stale1, stale2, ownLive, lockedByOther }.Concat(unrelated)) File.WriteAllBytes(f, new byte[1000]);

            using (new FileStream(lockedByOther, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
            {
                store.SaveToFile(path);
                Assert.False(File.Exists(stale1));
                Assert.False(File.Exists(stale2));
                Assert.True(File.Exists(ownLive));
                Assert.True(File.Exists(lockedByOther));
                Assert.All(unrelated, f => Assert.True(File.Exists(f), f));
            }

            // Once its writer is gone (the lock released), the next open removes it; Load and OpenSnapshot both clean.
            using (TreeStore.OpenSnapshot(path)) Assert.False(File.Exists(lockedByOther));
            string stale3 = Temp(deadPid + 3);
            File.WriteAllBytes(stale3, new byte[10]);
            using (var loaded = TreeStore.LoadFile(path)) Assert.Equal(1UL, loaded.GetTree(0).Total);
            Assert.False(File.Exists(stale3));
            Assert.True(File.Exists(ownLive));
            Assert.All(unrelated, f => Assert.True(File.Exists(f), f));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static (string Dir, string Path, List<VisitedNode> Expected) MappedFixture()
    {
        string dir = Directory.CreateTempSubdirectory("pa-hostile").FullName;
        string path = Path.Combine(dir, "t.snap");
        using var store = new TreeStore();
        var tree = store.CreateTree();
        for (int i = 0; i < 3000; i++) tree.Insert($"main;f{i % 37};g{i}", (ulong)(i % 5 + 1));
        store.SaveToFile(path);
        return (dir, path, TreeSnapshot.Of(tree));
    }

    /// <summary>Writes like cp, truncate or an editor do: in place, without taking any lock.</summary>
    private static FileStream InPlaceWriter(string path) => new(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);

    [Fact]
    public void AMappedFileTruncatedOrReplacedInPlaceIsRefusedInsteadOfFaulting()
    {
        // Issue 14 item 6: truncating the file, or cp other.snap t.snap, made the next Iterate die with
        // a fatal access violation (SIGBUS) in SubtreeTotals.
        foreach (string change in new[] { "truncate", "cp", "zero" })
        {
            var (dir, path, expected) = MappedFixture();
            try
            {
                using var mapped = TreeStore.OpenSnapshot(path);
                var tree = mapped.GetTree(0);
                Assert.Equal(expected, TreeSnapshot.Of(tree));
                long length = new FileInfo(path).Length;
                switch (change)
                {
                    case "truncate":
                        using (var w = InPlaceWriter(path)) w.SetLength(4096);
                        break;
                    case "cp":
                    {
                        using var other = new TreeStore();
                        other.CreateTree().Insert("x;y", 1);
                        byte[] bytes = SnapshotBytes.Of(other);
                        using var w = InPlaceWriter(path);
                        w.SetLength(0);
                        w.Write(bytes);
                        break;
                    }
                    case "zero":
                    {
                        // Same size, a run of zeros inside the node section: silently wrong totals before.
                        using var w = InPlaceWriter(path);
                        w.Position = 64 * 3;
                        w.Write(new byte[256]);
                        break;
                    }
                }
                Assert.True(change != "zero" || new FileInfo(path).Length == length);
                for (int attempt = 0; attempt < 2; attempt++)
                {
                    var ex = Assert.Throws<InvalidDataException>(() => tree.Iterate((_, _, _) => { }));
                    Assert.Contains("while it was mapped", ex.Message);
                    Assert.Contains(change == "zero" ? "no longer matches its checksum" : "truncated", ex.Message);
                    Assert.Throws<InvalidDataException>(() => tree.Top(1, TopBy.Total));
                    Assert.Throws<InvalidDataException>(() => mapped.Save(new MemoryStream()));
                }
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    [Fact]
    public void AMappedFileWhoseBytesDidNotChangeKeepsWorkingAndSaveToFileReplacesItSafely()
    {
        var (dir, path, expected) = MappedFixture();
        try
        {
            using var mapped = TreeStore.OpenSnapshot(path);
            var tree = mapped.GetTree(0);
            Assert.Equal(expected, TreeSnapshot.Of(tree));
            // touch: the modification time moves, the bytes do not: re-verified, then used as before.
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddHours(1));
            Assert.Equal(expected, TreeSnapshot.Of(tree));
            // The same bytes written again in place.
            byte[] same = File.ReadAllBytes(path);
            using (var w = InPlaceWriter(path)) w.Write(same);
            Assert.Equal(expected, TreeSnapshot.Of(tree));

            // A writer that takes an exclusive lock is refused while the file is mapped (shared flock).
            Assert.Throws<IOException>(() => new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.None).Dispose());

            // SaveToFile renames a new inode over the path: the mapping keeps the old file.
            using (var other = new TreeStore())
            {
                other.CreateTree().Insert("x;y", 1);
                other.SaveToFile(path);
            }
            Assert.Equal(expected, TreeSnapshot.Of(tree));
            using var reopened = TreeStore.OpenSnapshot(path);
            Assert.Equal(1UL, reopened.GetTree(0).Total);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
