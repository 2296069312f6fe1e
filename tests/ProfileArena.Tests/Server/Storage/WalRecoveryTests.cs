using ProfileArena.Server.Storage;
using ProfileArena.Server.Storage.Wal;
using static ProfileArena.Tests.Server.Storage.StorageTestKit;

namespace ProfileArena.Tests.Server.Storage;

/// <summary>Recovery from the WAL and snapshots: torn tails are cut, corruption anywhere else stops startup
/// naming file and offset, a failed write leaves nothing behind.</summary>
public class WalRecoveryTests
{
    private const long T0 = 1_700_000_000;
    private static readonly SeriesKey Series = Key("acme", "app.cpu", ("env", "prod"));
    private static readonly SeriesSelector All = Selector("app.cpu");

    /// <summary>Four calls, one record each, all in one shard; returns the models after 3 and after 4 records.</summary>
    private static async Task<(ReferenceModel Three, ReferenceModel Four)> WriteFourRecords(string dir)
    {
        var three = new ReferenceModel();
        var four = new ReferenceModel();
        var storage = await OpenAsync(Options(dir));
        for (int i = 0; i < 4; i++)
        {
            IngestProfile p = Profile(Series, T0 + 10 * i, ($"main;work{i}", (ulong)(i + 1)), ("main;shared", 7));
            await storage.IngestAsync([p], TestContext.Current.CancellationToken);
            if (i < 3) three.Add(p);
            four.Add(p);
        }
        storage.Dispose(); // crash: no snapshot
        return (three, four);
    }

    private static string OnlySegment(string dir)
    {
        var segments = Directory.EnumerateFiles(dir, "wal-*.log", SearchOption.AllDirectories).ToList();
        return Assert.Single(segments);
    }

    private static List<long> RecordOffsets(string segment)
    {
        var offsets = new List<long>();
        WalLog.ReadSegment(segment, last: true, r => offsets.Add(r.Offset));
        return offsets;
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (string file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    private static async Task AssertContents(string dir, ReferenceModel model)
    {
        using var storage = await OpenAsync(Options(dir));
        AssertSame(model.Query("acme", All, T0 - 100, T0 + 1000), QueryStacks(storage, "acme", All, T0 - 100, T0 + 1000, out _), dir);
    }

    [Fact]
    public async Task TruncatingTheLastRecordAtEveryByteDropsExactlyThatRecord()
    {
        using var original = new TempDataDir();
        var (three, four) = await WriteFourRecords(original.Path);
        string segment = OnlySegment(original.Path);
        List<long> offsets = RecordOffsets(segment);
        Assert.Equal(4, offsets.Count);
        long length = new FileInfo(segment).Length;
        await AssertContents(original.Path, four);

        for (long cut = offsets[3]; cut < length; cut++)
        {
            using var copy = new TempDataDir();
            CopyDirectory(original.Path, copy.Path);
            string copied = OnlySegment(copy.Path);
            using (var f = new FileStream(copied, FileMode.Open)) f.SetLength(cut);
            await AssertContents(copy.Path, three);
            Assert.Equal(offsets[3], new FileInfo(copied).Length); // the torn tail was cut
        }
    }

    [Fact]
    public async Task AfterCuttingATornTailNewRecordsAppendAndReplay()
    {
        using var dir = new TempDataDir();
        var (three, _) = await WriteFourRecords(dir.Path);
        string segment = OnlySegment(dir.Path);
        long last = RecordOffsets(segment)[3];
        using (var f = new FileStream(segment, FileMode.Open)) f.SetLength(last + 30);
        using (var storage = await OpenAsync(Options(dir.Path)))
        {
            IngestProfile p = Profile(Series, T0 + 500, ("main;after", 11));
            await storage.IngestAsync([p], TestContext.Current.CancellationToken);
            three.Add(p);
        }
        await AssertContents(dir.Path, three);
    }

    [Fact]
    public async Task ZerosAfterTheLastRecordAreATornTail()
    {
        using var dir = new TempDataDir();
        var (_, four) = await WriteFourRecords(dir.Path);
        string segment = OnlySegment(dir.Path);
        long length = new FileInfo(segment).Length;
        using (var f = new FileStream(segment, FileMode.Append)) f.Write(new byte[100]);
        await AssertContents(dir.Path, four);
        Assert.Equal(length, new FileInfo(segment).Length);
    }

    [Fact]
    public async Task AFlippedByteInAMiddleRecordFailsStartupNamingFileAndOffset()
    {
        using var original = new TempDataDir();
        await WriteFourRecords(original.Path);
        string segment = OnlySegment(original.Path);
        List<long> offsets = RecordOffsets(segment);
        for (long at = offsets[1]; at < offsets[2]; at++)
        {
            using var copy = new TempDataDir();
            CopyDirectory(original.Path, copy.Path);
            string copied = OnlySegment(copy.Path);
            byte[] bytes = File.ReadAllBytes(copied);
            bytes[at] ^= 0x20;
            File.WriteAllBytes(copied, bytes);
            var storage = new ProfileStorage(Options(copy.Path));
            var e = await Assert.ThrowsAsync<InvalidDataException>(() => storage.OpenAsync(TestContext.Current.CancellationToken));
            Assert.Contains(copied, e.Message);
            Assert.Contains($"byte offset {offsets[1]}", e.Message);
            Assert.False(storage.IsReady);
            Assert.Equal(bytes, File.ReadAllBytes(copied)); // nothing was cut or "repaired"
        }
    }

    [Fact]
    public async Task ACorruptSnapshotOrIndexFailsStartupNamingFileAndOffset()
    {
        using var original = new TempDataDir();
        using (var storage = await OpenAsync(Options(original.Path)))
        {
            await storage.IngestAsync([Profile(Series, T0, ("main;a", 5))], TestContext.Current.CancellationToken);
            await storage.SnapshotAsync();
        }
        foreach (string kind in new[] { "trees", "index" })
        {
            foreach (double where in new[] { 0.01, 0.5, 0.97 })
            {
                using var copy = new TempDataDir();
                CopyDirectory(original.Path, copy.Path);
                string file = Directory.EnumerateFiles(copy.Path, "snap-*." + kind, SearchOption.AllDirectories).Single();
                byte[] bytes = File.ReadAllBytes(file);
                bytes[(int)(bytes.Length * where)] ^= 0x01;
                File.WriteAllBytes(file, bytes);
                var e = await Assert.ThrowsAsync<InvalidDataException>(() => new ProfileStorage(Options(copy.Path)).OpenAsync(TestContext.Current.CancellationToken));
                Assert.Contains(file, e.Message);
                Assert.Matches(@"byte offset \d+", e.Message);
            }
        }
    }

    [Fact]
    public async Task ATreesFileWhoseIndexNeverLandedIsIgnoredAndRemoved()
    {
        using var dir = new TempDataDir();
        var model = new ReferenceModel();
        using (var storage = await OpenAsync(Options(dir.Path)))
        {
            IngestProfile p = Profile(Series, T0, ("main;a", 5));
            await storage.IngestAsync([p], TestContext.Current.CancellationToken);
            model.Add(p);
            await storage.SnapshotAsync();
        }
        string trees = Directory.EnumerateFiles(dir.Path, "snap-*.trees", SearchOption.AllDirectories).Single();
        string orphan = Path.Combine(Path.GetDirectoryName(trees)!, $"snap-{99:D20}.trees");
        File.Copy(trees, orphan); // a crash between the two renames of a later snapshot
        await AssertContents(dir.Path, model);
        Assert.False(File.Exists(orphan));
    }

    [Fact]
    public async Task AFailedWalWriteStoresNothingAndLeavesNoBytesBehind()
    {
        using var dir = new TempDataDir();
        var model = new ReferenceModel();
        using (var storage = await OpenAsync(Options(dir.Path)))
        {
            IngestProfile ok = Profile(Series, T0, ("main;ok", 1));
            await storage.IngestAsync([ok], TestContext.Current.CancellationToken);
            model.Add(ok);
            WalLog.FailWritesForTests[dir.Path] = 13;
            try
            {
                await Assert.ThrowsAsync<StorageUnavailableException>(() => storage.IngestAsync([Profile(Series, T0, ("main;lost", 2))], TestContext.Current.CancellationToken).AsTask());
            }
            finally
            {
                WalLog.FailWritesForTests.TryRemove(dir.Path, out _);
            }
            AssertSame(model.Query("acme", All, T0 - 100, T0 + 1000), QueryStacks(storage, "acme", All, T0 - 100, T0 + 1000, out _), "after the failed write");
            IngestProfile later = Profile(Series, T0 + 10, ("main;later", 3));
            await storage.IngestAsync([later], TestContext.Current.CancellationToken);
            model.Add(later);
        }
        await AssertContents(dir.Path, model); // the 13 bytes were cut back: the later record replays
    }
}
