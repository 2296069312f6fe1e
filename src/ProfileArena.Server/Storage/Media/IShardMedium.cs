using ProfileArena.Server.Storage.Trees;

namespace ProfileArena.Server.Storage.Media;

/// <summary>
/// Where one shard's durable state lives: its write-ahead log segments (<see cref="Wal"/>) and its snapshots
/// (<see cref="Snapshots"/>). The shard keeps every rule (framing, torn tails, recovery order, what a snapshot
/// retires); the medium only stores and fences. <see cref="LocalShardMedium"/> is a directory on this machine
/// (fsync, rename, directory fsync); <see cref="BlobShardMedium"/> is Azure Blob storage shared by a cluster,
/// where a successor can take a shard over and a fenced-out predecessor can write nothing more
/// (native-notes.md, "Server storage", "Shared medium and fencing").
/// </summary>
internal interface IShardMedium : IDisposable
{
    /// <summary>Where the shard lives, for messages: a directory path or <c>blob://container/prefix</c>.</summary>
    string Location { get; }

    /// <summary>The write-ahead log's segments.</summary>
    IWalMedium Wal { get; }

    /// <summary>The snapshot files (trees + series index).</summary>
    ISnapshotMedium Snapshots { get; }

    /// <summary>Makes this process the shard's only writer before it reads anything: a shared medium fences out
    /// every earlier writer (local: creates the directory; one process owns a data directory).</summary>
    /// <exception cref="StorageUnavailableException">The medium cannot be reached.</exception>
    void TakeOwnership();
}

/// <summary>One WAL segment as listed: its first sequence number, its name for messages, its length in bytes
/// (a shared medium's cut segment counts only up to its cut).</summary>
internal readonly record struct WalSegment(long FirstSeq, string Name, long Length);

/// <summary>The segments of one shard's WAL (<c>wal-&lt;first seq, 20 digits&gt;.log</c>).</summary>
internal interface IWalMedium
{
    /// <summary>The segments with at least one byte, by first sequence number (local: every segment file).</summary>
    List<WalSegment> Segments();

    /// <summary>The bytes of <paramref name="segment"/> (up to its cut, if it was cut).</summary>
    byte[] Read(WalSegment segment);

    /// <summary>Makes <paramref name="segment"/> end at <paramref name="length"/> for every later reader (its torn
    /// tail, never acknowledged), durably.</summary>
    void CutTail(WalSegment segment, long length);

    /// <summary>The writer that appends the records from <paramref name="nextSeq"/> on, after recovery (which cut any
    /// torn tail): local continues <paramref name="last"/> when there is one; blob always starts a new segment.</summary>
    IWalSegmentWriter OpenForAppend(WalSegment? last, long nextSeq);

    /// <summary>A new, empty segment whose first record will be <paramref name="firstSeq"/>; its name is durable.</summary>
    IWalSegmentWriter StartSegment(long firstSeq);

    /// <summary>Deletes <paramref name="segment"/> (a snapshot covers it).</summary>
    void Delete(WalSegment segment);

    /// <summary>Makes earlier deletions durable (local: directory fsync).</summary>
    void FlushDeletes();
}

/// <summary>The segment a WAL is appending to.</summary>
internal interface IWalSegmentWriter : IDisposable
{
    /// <summary>The segment's name, for messages.</summary>
    string Name { get; }

    /// <summary>Set once the segment cannot take another record (a failed write could not be undone, or a successor
    /// fenced this writer out): why. The log then refuses every later write.</summary>
    string? Failure { get; }

    /// <summary>True when the segment should not grow further (an append blob nears its block limit): the shard
    /// starts a new segment after this group.</summary>
    bool Full { get; }

    /// <summary>Appends whole framed records; on return they are durable.</summary>
    /// <exception cref="StorageUnavailableException">Nothing of the group may be read back as acknowledged: local
    /// cut it back; when even that failed, or on a shared medium, <see cref="Failure"/> is set.
    /// <see cref="ShardFencedException"/> when a successor owns the shard.</exception>
    void Append(ReadOnlySpan<byte> records);
}

/// <summary>One shard's snapshots: <c>snap-&lt;seq, 20 digits&gt;.trees</c> and <c>.index</c>, the index written last.</summary>
internal interface ISnapshotMedium
{
    /// <summary>Removes leftovers of unfinished writes (local: <c>.*.tmp</c> files).</summary>
    void CleanTemporaries();

    /// <summary>The sequence number of the newest committed snapshot, 0 when there is none.</summary>
    long Latest();

    /// <summary>Name of a snapshot's trees file (<paramref name="kind"/> "trees") or index (<c>"index"</c>) for messages.</summary>
    string Name(long seq, string kind);

    /// <summary>The length of the snapshot's trees file, or null when it does not exist.</summary>
    long? TreesLength(long seq);

    /// <summary>The bytes of the snapshot's series index.</summary>
    byte[] ReadIndex(long seq);

    /// <summary>The snapshot's trees, loaded by <paramref name="loadFile"/> from a local file (the medium's own or
    /// a downloaded copy).</summary>
    ITreeBackend LoadTrees(long seq, Func<string, ITreeBackend> loadFile);

    /// <summary>Writes and commits the snapshot at <paramref name="seq"/>: <paramref name="saveTrees"/> writes the
    /// trees to the local path it is given, then <paramref name="index"/> (given the trees length) is stored last.
    /// A reader sees the old snapshot or the whole new one.</summary>
    /// <exception cref="ShardFencedException">A successor owns the shard: the snapshot is not committed.</exception>
    void Write(long seq, Action<string> saveTrees, Func<long, byte[]> index);

    /// <summary>Deletes every snapshot file whose seq is not <paramref name="keep"/> (recovery: older snapshots and a
    /// trees file whose index never made it) or, with <paramref name="olderOnly"/>, only those before it.</summary>
    void DeleteOthers(long keep, bool olderOnly);
}
