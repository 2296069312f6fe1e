using System.Globalization;
using ProfileArena.Server.Storage.Trees;
using ProfileArena.Server.Storage.Wal;

namespace ProfileArena.Server.Storage.Media;

/// <summary>
/// A shard in a local directory (<c>DataDir/&lt;tenant dir&gt;/shard-N/</c>): WAL segment files appended with one
/// write + fsync per group, snapshot files written to a temp name, fsynced and renamed, directory fsyncs after
/// every name change. One process owns a data directory, so there is nothing to fence.
/// </summary>
internal sealed class LocalShardMedium : IShardMedium, IWalMedium, ISnapshotMedium
{
    public LocalShardMedium(string directory)
    {
        Directory = directory;
    }

    /// <summary>The shard's directory.</summary>
    public string Directory { get; }

    public string Location => Directory;

    public IWalMedium Wal => this;

    public ISnapshotMedium Snapshots => this;

    public void TakeOwnership()
    {
        bool created = !System.IO.Directory.Exists(Directory);
        System.IO.Directory.CreateDirectory(Directory);
        if (created) DirectorySync.Flush(Path.GetDirectoryName(Path.GetFullPath(Directory))!); // the new shard directory survives a crash
    }

    public void Dispose() { }

    // ---------------------------------------------------------------- WAL

    public List<WalSegment> Segments()
    {
        var list = new List<WalSegment>();
        foreach (string path in System.IO.Directory.EnumerateFiles(Directory, "wal-*.log"))
        {
            string name = Path.GetFileNameWithoutExtension(path);
            if (name.Length == 24 && long.TryParse(name.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out long seq))
                list.Add(new WalSegment(seq, path, new FileInfo(path).Length));
        }
        list.Sort((a, b) => a.FirstSeq.CompareTo(b.FirstSeq));
        return list;
    }

    public byte[] Read(WalSegment segment) => File.ReadAllBytes(segment.Name);

    public void CutTail(WalSegment segment, long length)
    {
        using var file = new FileStream(segment.Name, FileMode.Open, FileAccess.Write, FileShare.Read, 0);
        file.SetLength(length);
        file.Flush(flushToDisk: true);
    }

    public IWalSegmentWriter OpenForAppend(WalSegment? last, long nextSeq)
    {
        if (last == null) return StartSegment(nextSeq);
        var file = new FileStream(last.Value.Name, FileMode.Open, FileAccess.Write, FileShare.Read, 0);
        file.Seek(0, SeekOrigin.End);
        return new SegmentFile(file);
    }

    public IWalSegmentWriter StartSegment(long firstSeq)
    {
        string path = Path.Combine(Directory, $"wal-{firstSeq:D20}.log");
        var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read, 0);
        DirectorySync.Flush(Directory); // the new name must survive a crash before its first record is acknowledged
        return new SegmentFile(file);
    }

    public void Delete(WalSegment segment) => File.Delete(segment.Name);

    public void FlushDeletes() => DirectorySync.Flush(Directory);

    /// <summary>The segment file being appended to. A failed write or fsync (ENOSPC, EIO) cuts the file back to its
    /// length before the group and fsyncs, so no half group stays behind a later good one; if even that fails the
    /// segment takes nothing more (the process must restart; replay then drops the torn tail).</summary>
    private sealed class SegmentFile(FileStream file) : IWalSegmentWriter
    {
        public string Name => file.Name;

        public string? Failure { get; private set; }

        public bool Full => false;

        public void Append(ReadOnlySpan<byte> records)
        {
            if (Failure != null) throw new StorageUnavailableException(Failure);
            long before = file.Length;
            try
            {
                if (!WalLog.FailWritesForTests.IsEmpty && WalLog.FailWritesForTests.FirstOrDefault(f => file.Name.StartsWith(f.Key, StringComparison.Ordinal)) is { Key: not null, Value: int partial })
                {
                    file.Write(records[..Math.Min(partial, records.Length)]);
                    throw new IOException("No space left on device (injected)");
                }
                file.Write(records);
                file.Flush(flushToDisk: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                try
                {
                    file.SetLength(before);
                    file.Seek(before, SeekOrigin.Begin);
                    file.Flush(flushToDisk: true);
                }
                catch (Exception cut) when (cut is IOException or UnauthorizedAccessException)
                {
                    Failure = $"the write-ahead log {file.Name} could not be cut back after a failed write ({cut.Message}); this shard refuses writes until restart";
                }
                throw new StorageUnavailableException($"the write-ahead log {file.Name} could not be written: {e.Message}", e);
            }
        }

        public void Dispose() => file.Dispose();
    }

    // ---------------------------------------------------------------- snapshots

    public void CleanTemporaries()
    {
        foreach (string temp in System.IO.Directory.EnumerateFiles(Directory, ".*.tmp")) File.Delete(temp); // unfinished atomic writes
    }

    public long Latest() =>
        SnapshotFiles().Where(s => s.Path.EndsWith(".index", StringComparison.Ordinal)).Select(s => s.Seq).DefaultIfEmpty(0).Max();

    public string Name(long seq, string kind) => Path.Combine(Directory, $"snap-{seq:D20}.{kind}");

    public long? TreesLength(long seq)
    {
        var info = new FileInfo(Name(seq, "trees"));
        return info.Exists ? info.Length : null;
    }

    public byte[] ReadIndex(long seq) => File.ReadAllBytes(Name(seq, "index"));

    public ITreeBackend LoadTrees(long seq, Func<string, ITreeBackend> loadFile) => loadFile(Name(seq, "trees"));

    public void Write(long seq, Action<string> saveTrees, Func<long, byte[]> index)
    {
        string trees = Name(seq, "trees");
        saveTrees(trees); // temp, fsync, rename
        DirectorySync.Flush(Directory);
        AtomicFile.Write(Name(seq, "index"), index(new FileInfo(trees).Length));
    }

    public void DeleteOthers(long keep, bool olderOnly)
    {
        foreach (var (seq, path) in SnapshotFiles())
        {
            if (olderOnly ? seq < keep : seq != keep) File.Delete(path);
        }
    }

    private List<(long Seq, string Path)> SnapshotFiles()
    {
        var list = new List<(long, string)>();
        foreach (string path in System.IO.Directory.EnumerateFiles(Directory, "snap-*"))
        {
            string name = Path.GetFileName(path);
            if (name.Length > 25 && long.TryParse(name.AsSpan(5, 20), NumberStyles.None, CultureInfo.InvariantCulture, out long seq)) list.Add((seq, path));
        }
        return list;
    }
}
