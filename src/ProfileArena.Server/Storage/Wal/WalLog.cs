using System.Buffers.Binary;
using System.Globalization;

namespace ProfileArena.Server.Storage.Wal;

/// <summary>
/// One shard's write-ahead log: segment files <c>wal-&lt;first seq, 20 digits&gt;.log</c>, appended only by the
/// shard's loop. <see cref="Append"/> writes a group of records with one write and one fsync; if either fails
/// the segment is cut back to its previous length (and fsynced) so no half group stays behind a later good
/// one; if even that fails the log refuses every later write (the process must restart, replay then drops
/// the torn tail). A new segment starts at each snapshot (<see cref="Rotate"/>).
/// </summary>
internal sealed class WalLog : IDisposable
{
    private readonly string _directory;
    private FileStream? _segment;
    private string? _failure;

    private WalLog(string directory) => _directory = directory;

    /// <summary>Fault injection for tests (ENOSPC without filling a disk): directory prefix → bytes a write to a
    /// segment under it puts down before it fails with an <see cref="IOException"/>. Empty in production.</summary>
    internal static System.Collections.Concurrent.ConcurrentDictionary<string, int> FailWritesForTests { get; } = new();

    /// <summary>Successful group writes (each one fsync) since the log was opened.</summary>
    public long Syncs { get; private set; }

    /// <summary>Bytes in all segments of the log.</summary>
    public long Bytes { get; private set; }

    /// <summary>The segment files of <paramref name="directory"/>, by first sequence number.</summary>
    public static List<(long FirstSeq, string Path)> Segments(string directory)
    {
        var list = new List<(long, string)>();
        foreach (string path in Directory.EnumerateFiles(directory, "wal-*.log"))
        {
            string name = Path.GetFileNameWithoutExtension(path);
            if (name.Length == 24 && long.TryParse(name.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out long seq)) list.Add((seq, path));
        }
        list.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return list;
    }

    public static string SegmentPath(string directory, long firstSeq) => Path.Combine(directory, $"wal-{firstSeq:D20}.log");

    /// <summary>Opens the log of <paramref name="directory"/> for appending to its last segment (or to a new
    /// one starting at <paramref name="nextSeq"/> when there is none). Replay has already cut any torn tail.</summary>
    public static WalLog Open(string directory, long nextSeq)
    {
        var log = new WalLog(directory);
        List<(long FirstSeq, string Path)> segments = Segments(directory);
        foreach (var s in segments) log.Bytes += new FileInfo(s.Path).Length;
        if (segments.Count == 0)
        {
            log.StartSegment(nextSeq);
        }
        else
        {
            log._segment = new FileStream(segments[^1].Path, FileMode.Open, FileAccess.Write, FileShare.Read, 0);
            log._segment.Seek(0, SeekOrigin.End);
        }
        return log;
    }

    /// <summary>Writes <paramref name="records"/> (whole framed records) and fsyncs them: on return they are durable.</summary>
    /// <exception cref="StorageUnavailableException">The write or the fsync failed; nothing of the group remains.</exception>
    public void Append(ReadOnlySpan<byte> records)
    {
        if (_failure != null) throw new StorageUnavailableException(_failure);
        FileStream file = _segment!;
        long before = file.Length;
        try
        {
            if (!FailWritesForTests.IsEmpty && FailWritesForTests.FirstOrDefault(f => file.Name.StartsWith(f.Key, StringComparison.Ordinal)) is { Key: not null, Value: int partial })
            {
                file.Write(records[..Math.Min(partial, records.Length)]);
                throw new IOException("No space left on device (injected)");
            }
            file.Write(records);
            file.Flush(flushToDisk: true);
            Bytes += records.Length;
            Syncs++;
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
                _failure = $"the write-ahead log {file.Name} could not be cut back after a failed write ({cut.Message}); this shard refuses writes until restart";
            }
            throw new StorageUnavailableException($"the write-ahead log {file.Name} could not be written: {e.Message}", e);
        }
    }

    /// <summary>Closes the current segment and starts <c>wal-&lt;nextSeq&gt;.log</c>; records of older segments are
    /// then retired by <see cref="DeleteBefore"/> once a snapshot covers them.</summary>
    public void Rotate(long nextSeq)
    {
        if (_failure != null) throw new StorageUnavailableException(_failure);
        _segment?.Dispose();
        _segment = null;
        StartSegment(nextSeq);
    }

    /// <summary>Deletes every segment that starts before <paramref name="firstKept"/> (a snapshot covers them).</summary>
    public void DeleteBefore(long firstKept)
    {
        foreach (var (seq, path) in Segments(_directory))
        {
            if (seq >= firstKept) continue;
            long length = new FileInfo(path).Length;
            File.Delete(path);
            Bytes -= length;
        }
        DirectorySync.Flush(_directory);
    }

    private void StartSegment(long firstSeq)
    {
        string path = SegmentPath(_directory, firstSeq);
        _segment = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read, 0);
        DirectorySync.Flush(_directory); // the new name must survive a crash before its first record is acknowledged
    }

    public void Dispose()
    {
        _segment?.Dispose();
        _segment = null;
    }

    /// <summary>
    /// Reads the records of one segment in order. A record that fails its checks is a torn tail only when it
    /// is in the last segment and no intact record follows it anywhere in the file (a crash can only tear the
    /// group being written, which was never acknowledged): the reader then returns its offset as the valid
    /// length, for the caller to cut. Anything else is corruption: <see cref="InvalidDataException"/> naming
    /// the file and the byte offset.
    /// </summary>
    public static long ReadSegment(string path, bool last, Action<WalRecord> onRecord)
    {
        byte[] bytes = File.ReadAllBytes(path);
        long offset = 0;
        while (offset < bytes.Length)
        {
            string? problem = Check(bytes, offset, out int recordLength);
            if (problem != null)
            {
                long next = FindIntactRecord(bytes, offset + 1);
                if (last && next < 0) return offset; // torn tail: never acknowledged
                throw new InvalidDataException(next >= 0
                    ? $"write-ahead log {path} is corrupt at byte offset {offset}: {problem} (an intact record follows at byte offset {next}, so this is not a torn tail)"
                    : $"write-ahead log {path} is corrupt at byte offset {offset}: {problem} (not the last segment, so this is not a torn tail)");
            }
            var header = bytes.AsSpan((int)offset, WalFraming.HeaderSize);
            var kind = (WalRecordKind)BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
            long seq = BinaryPrimitives.ReadInt64LittleEndian(header[8..]);
            byte[] payload = bytes.AsSpan((int)offset + WalFraming.HeaderSize, recordLength - WalFraming.HeaderSize - WalFraming.TrailerSize).ToArray();
            onRecord(new WalRecord(kind, seq, payload, offset));
            offset += recordLength;
        }
        return offset;
    }

    private static string? Check(byte[] bytes, long offset, out int recordLength)
    {
        recordLength = 0;
        if (bytes.Length - offset < WalFraming.HeaderSize) return $"{bytes.Length - offset} bytes left, less than a record header";
        int? payload = WalFraming.CheckHeader(bytes.AsSpan((int)offset, WalFraming.HeaderSize), out string problem);
        if (payload == null) return problem;
        long length = (long)WalFraming.HeaderSize + payload.Value + WalFraming.TrailerSize;
        if (length > bytes.Length - offset) return $"the record claims {length} bytes, {bytes.Length - offset} are left";
        if (!WalFraming.CheckRecord(bytes.AsSpan((int)offset, (int)length))) return "record checksum mismatch";
        recordLength = (int)length;
        return null;
    }

    private static long FindIntactRecord(byte[] bytes, long from)
    {
        for (long at = from; at + WalFraming.HeaderSize + WalFraming.TrailerSize <= bytes.Length; at++)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)at, 4)) != WalFraming.Magic) continue;
            if (Check(bytes, at, out _) == null) return at;
        }
        return -1;
    }

    /// <summary>Cuts a segment back to <paramref name="length"/> (its torn tail) and makes the cut durable.</summary>
    public static void CutTail(string path, long length)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.Read, 0);
        file.SetLength(length);
        file.Flush(flushToDisk: true);
    }

    /// <summary>Name of a segment's first seq for messages.</summary>
    public static string Describe(string path) => Path.GetFileName(path);
}
