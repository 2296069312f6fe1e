using System.Buffers.Binary;
using ProfileArena.Server.Storage.Media;

namespace ProfileArena.Server.Storage.Wal;

/// <summary>
/// One shard's write-ahead log: segments <c>wal-&lt;first seq, 20 digits&gt;.log</c> on the shard's medium
/// (<see cref="IWalMedium"/>), appended only by the shard's loop. <see cref="Append"/> writes a group of records
/// with one durable append (local: one write + one fsync); a failed append leaves nothing of the group (local cuts
/// the segment back); when that cannot be guaranteed, or a successor fenced this writer out, the log refuses every
/// later write (the process or grain must reopen the shard; replay then drops the torn tail). A new segment
/// starts at each snapshot (<see cref="Rotate"/>).
/// </summary>
internal sealed class WalLog : IDisposable
{
    private readonly IWalMedium _medium;
    private IWalSegmentWriter? _segment;
    private string? _failure;

    private WalLog(IWalMedium medium) => _medium = medium;

    /// <summary>Fault injection for tests (ENOSPC without filling a disk): directory prefix → bytes a write to a
    /// segment under it puts down before it fails with an <see cref="IOException"/>. Empty in production.</summary>
    internal static System.Collections.Concurrent.ConcurrentDictionary<string, int> FailWritesForTests { get; } = new();

    /// <summary>Successful group writes (each one fsync) since the log was opened.</summary>
    public long Syncs { get; private set; }

    /// <summary>Bytes in all segments of the log.</summary>
    public long Bytes { get; private set; }

    /// <summary>True when the current segment should not grow further (see <see cref="IWalSegmentWriter.Full"/>).</summary>
    public bool SegmentFull => _segment?.Full ?? false;

    /// <summary>Opens the log for appending after its last segment's last record, <paramref name="nextSeq"/>
    /// (<see cref="IWalMedium.OpenForAppend"/>). Replay has already cut any torn tail.</summary>
    public static WalLog Open(IWalMedium medium, long nextSeq)
    {
        var log = new WalLog(medium);
        List<WalSegment> segments = medium.Segments();
        foreach (WalSegment s in segments) log.Bytes += s.Length;
        log._segment = medium.OpenForAppend(segments.Count == 0 ? null : segments[^1], nextSeq);
        return log;
    }

    /// <summary>Writes <paramref name="records"/> (whole framed records) durably: on return they are durable.</summary>
    /// <exception cref="StorageUnavailableException">The write failed; nothing of the group remains
    /// (<see cref="ShardFencedException"/>: a successor owns the shard).</exception>
    public void Append(ReadOnlySpan<byte> records)
    {
        if (_failure != null) throw new StorageUnavailableException(_failure);
        IWalSegmentWriter segment = _segment!;
        try
        {
            segment.Append(records);
        }
        catch (StorageUnavailableException)
        {
            _failure ??= segment.Failure;
            throw;
        }
        Bytes += records.Length;
        Syncs++;
    }

    /// <summary>Closes the current segment and starts <c>wal-&lt;nextSeq&gt;.log</c>; records of older segments are
    /// then retired by <see cref="DeleteBefore"/> once a snapshot covers them.</summary>
    public void Rotate(long nextSeq)
    {
        if (_failure != null) throw new StorageUnavailableException(_failure);
        _segment?.Dispose();
        _segment = null;
        try
        {
            _segment = _medium.StartSegment(nextSeq);
        }
        catch (ShardFencedException e)
        {
            _failure = e.Message;
            throw;
        }
    }

    /// <summary>Deletes every segment that starts before <paramref name="firstKept"/> (a snapshot covers them).</summary>
    public void DeleteBefore(long firstKept)
    {
        foreach (WalSegment s in _medium.Segments())
        {
            if (s.FirstSeq >= firstKept) continue;
            _medium.Delete(s);
            Bytes -= s.Length;
        }
        _medium.FlushDeletes();
    }

    public void Dispose()
    {
        _segment?.Dispose();
        _segment = null;
    }

    /// <summary>Reads the records of one segment file (tests); see <see cref="ReadSegment(byte[], string, bool, Action{WalRecord})"/>.</summary>
    public static long ReadSegment(string path, bool last, Action<WalRecord> onRecord) => ReadSegment(File.ReadAllBytes(path), path, last, onRecord);

    /// <summary>
    /// Reads the records of one segment in order. A record that fails its checks is a torn tail only when it
    /// is in the last segment and no intact record follows it anywhere in the file (a crash can only tear the
    /// group being written, which was never acknowledged): the reader then returns its offset as the valid
    /// length, for the caller to cut. Anything else is corruption: <see cref="InvalidDataException"/> naming
    /// the file and the byte offset.
    /// </summary>
    public static long ReadSegment(byte[] bytes, string path, bool last, Action<WalRecord> onRecord)
    {
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
}
