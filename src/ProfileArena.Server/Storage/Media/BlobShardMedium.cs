using System.Buffers;
using System.Globalization;
using System.Text;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using ProfileArena.Server.Storage.Trees;

namespace ProfileArena.Server.Storage.Media;

/// <summary>
/// A shard in Azure Blob storage (Azurite in tests), under <c>&lt;tenant dir&gt;/shard-N/</c> of one container, so any
/// silo can take it over. WAL segments are append blobs <c>wal-&lt;first seq&gt;.log</c> (a group larger than one append
/// block, 4 MiB, spans several blocks; a crash between them leaves a torn tail that replay cuts like a file's).
/// Snapshots are block blobs <c>snap-&lt;seq&gt;.&lt;owner token&gt;.trees</c> and <c>.index</c>, staged and committed, and
/// become the snapshot only when the <c>owner</c> blob names them. A torn tail is "cut" by a <c>validlength</c>
/// metadata entry on its segment (append blobs cannot shrink); appends then go to a new segment.
/// <para>Fencing (native-notes.md, "Shared medium and fencing"): <see cref="TakeOwnership"/> breaks the infinite lease
/// of the <c>owner</c> blob and takes a new one, then breaks the leases of every WAL segment. Every append carries the
/// segment's lease (and its append position), every new segment is proven by renewing the owner lease after it was
/// created and leased, and a snapshot commits by rewriting the owner blob under the owner lease: a writer whose
/// lease was broken gets 409/412 and <see cref="ShardFencedException"/>, having written nothing that counts.</para>
/// </summary>
internal sealed class BlobShardMedium : IShardMedium, IWalMedium, ISnapshotMedium
{
    private const string ValidLength = "validlength";

    /// <summary>Bytes per append block: 4 MiB, what every service version and Azurite take (newer versions take
    /// up to 100 MiB, which would make a torn group rarer but change nothing else).</summary>
    public const int AppendBlockBytes = 4 << 20;
    private readonly BlobContainerClient _container;
    private readonly string _prefix;
    private readonly string _scratch;
    private readonly string _leaseId = Guid.NewGuid().ToString();
    private readonly string _token;
    private readonly HashSet<string> _leased = new(StringComparer.Ordinal); // segments this owner holds a lease on
    private BlobLeaseClient? _ownerLease;
    private (long Seq, string Token) _pointer;

    /// <param name="container">The container (exists).</param>
    /// <param name="prefix">The shard's blob prefix, ending in '/': <c>&lt;tenant dir&gt;/shard-N/</c>.</param>
    /// <param name="scratchDirectory">A local directory for a snapshot's trees file on its way to or from a blob.</param>
    public BlobShardMedium(BlobContainerClient container, string prefix, string scratchDirectory)
    {
        _container = container;
        _prefix = prefix;
        _scratch = scratchDirectory;
        _token = _leaseId[..8];
    }

    public string Location => $"blob://{_container.Name}/{_prefix}";

    public IWalMedium Wal => this;

    public ISnapshotMedium Snapshots => this;

    private BlockBlobClient Owner => _container.GetBlockBlobClient(_prefix + "owner");

    public void TakeOwnership()
    {
        Azure(() =>
        {
            try
            {
                Owner.Upload(new MemoryStream([]), new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } });
            }
            catch (RequestFailedException e) when (e.Status is 409 or 412)
            {
                // exists already (an earlier owner, possibly holding its lease)
            }
            BlobLeaseClient lease = Owner.GetBlobLeaseClient(_leaseId);
            for (int attempt = 0; ; attempt++)
            {
                try
                {
                    lease.Acquire(BlobLeaseClient.InfiniteLeaseDuration);
                    break;
                }
                catch (RequestFailedException e) when (e.Status == 409 && attempt < 3)
                {
                    Owner.GetBlobLeaseClient().Break(TimeSpan.Zero); // the predecessor's lease: it is fenced out from here on
                }
            }
            _ownerLease = lease;
            // Every segment the predecessor may still append to loses its lease before anything is read.
            foreach (BlobItem blob in _container.GetBlobs(new GetBlobsOptions { Prefix = _prefix + "wal-" }))
            {
                if (blob.Properties.LeaseState == LeaseState.Leased)
                    BreakLease(_container.GetAppendBlobClient(blob.Name));
            }
        }, "take ownership of");
    }

    private static void BreakLease(BlobBaseClient blob)
    {
        try
        {
            blob.GetBlobLeaseClient().Break(TimeSpan.Zero);
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            // no lease (any more)
        }
    }

    /// <summary>Proves this medium still owns the shard (the owner lease is ours); else <see cref="ShardFencedException"/>.</summary>
    private void RenewOwner()
    {
        if (_ownerLease == null) throw new InvalidOperationException("TakeOwnership first");
        try
        {
            _ownerLease.Renew();
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            throw Fenced($"its owner lease on {Location}owner was broken ({e.ErrorCode})", e);
        }
    }

    private ShardFencedException Fenced(string why, Exception? inner = null) =>
        new($"shard storage {Location}: another owner took the shard over: {why}; nothing was written", inner);

    /// <summary>Runs a call to the service; a failure that is not fencing becomes <see cref="StorageUnavailableException"/>.</summary>
    private T Azure<T>(Func<T> call, string what)
    {
        try
        {
            return call();
        }
        catch (RequestFailedException e)
        {
            throw new StorageUnavailableException($"could not {what} {Location}: {e.Status} {e.ErrorCode}: {FirstLine(e.Message)}", e);
        }
        catch (AggregateException e) when (e.InnerExceptions.All(i => i is RequestFailedException or IOException or TimeoutException))
        {
            throw new StorageUnavailableException($"could not {what} {Location}: {FirstLine(e.Message)}", e);
        }
    }

    private void Azure(Action call, string what) => Azure(() => { call(); return 0; }, what);

    private static string FirstLine(string message) => message.Split('\n')[0].Trim();

    public void Dispose()
    {
        // The lease stays: whoever opens the shard next breaks it, as it would after a crash.
    }

    // ---------------------------------------------------------------- WAL

    private string SegmentName(long firstSeq) => $"{_prefix}wal-{firstSeq:D20}.log";

    private static long ValidLengthOf(long contentLength, IDictionary<string, string>? metadata) =>
        metadata != null && metadata.TryGetValue(ValidLength, out string? text) && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long cut)
            ? Math.Min(cut, contentLength) : contentLength;

    public List<WalSegment> Segments() => Azure(() =>
    {
        var list = new List<WalSegment>();
        foreach (BlobItem blob in _container.GetBlobs(new GetBlobsOptions { Prefix = _prefix + "wal-", Traits = BlobTraits.Metadata }))
        {
            string name = blob.Name[_prefix.Length..];
            if (name.Length != 28 || !name.EndsWith(".log", StringComparison.Ordinal)
                || !long.TryParse(name.AsSpan(4, 20), NumberStyles.None, CultureInfo.InvariantCulture, out long seq)) continue;
            long length = ValidLengthOf(blob.Properties.ContentLength ?? 0, blob.Metadata);
            // An empty segment holds nothing to replay (a new one, one cut to nothing, or one a fenced-out writer
            // created and abandoned); the writer replaces it when it needs that name.
            if (length > 0) list.Add(new WalSegment(seq, $"blob://{_container.Name}/{blob.Name}", length));
        }
        list.Sort((a, b) => a.FirstSeq.CompareTo(b.FirstSeq));
        return list;
    }, "list the WAL of");

    public byte[] Read(WalSegment segment) => Azure(() =>
    {
        BlobDownloadResult result = _container.GetAppendBlobClient(SegmentName(segment.FirstSeq)).DownloadContent().Value;
        byte[] bytes = result.Content.ToArray();
        long valid = ValidLengthOf(bytes.Length, result.Details.Metadata);
        return valid < bytes.Length ? bytes[..(int)valid] : bytes;
    }, "read the WAL of");

    public void CutTail(WalSegment segment, long length) => Azure(() =>
    {
        // Append blobs cannot shrink: the cut is recorded on the blob, and the log continues in a new segment.
        _container.GetAppendBlobClient(SegmentName(segment.FirstSeq)).SetMetadata(new Dictionary<string, string> { [ValidLength] = length.ToString(CultureInfo.InvariantCulture) });
    }, "cut the WAL tail of");

    public IWalSegmentWriter OpenForAppend(WalSegment? last, long nextSeq) => StartSegment(nextSeq);

    public IWalSegmentWriter StartSegment(long firstSeq)
    {
        string name = SegmentName(firstSeq);
        AppendBlobClient blob = _container.GetAppendBlobClient(name);
        var createNew = new AppendBlobCreateOptions { Conditions = new AppendBlobRequestConditions { IfNoneMatch = ETag.All } };
        Azure(() =>
        {
            try
            {
                blob.Create(createNew);
            }
            catch (RequestFailedException e) when (e.Status == 409)
            {
                // The name exists. Only an empty leftover may be replaced, and only while we still own the shard
                // (then it predates any successor: a successor creates segments only after breaking our lease).
                RenewOwner();
                BlobProperties props = blob.GetProperties().Value;
                if (ValidLengthOf(props.ContentLength, props.Metadata) > 0)
                    throw new StorageUnavailableException($"WAL segment {Location}{name[_prefix.Length..]} already holds records; the log cannot start there");
                if (props.LeaseState == LeaseState.Leased) BreakLease(blob);
                blob.Delete();
                blob.Create(createNew);
            }
            blob.GetBlobLeaseClient(_leaseId).Acquire(BlobLeaseClient.InfiniteLeaseDuration);
            _leased.Add(name);
            try
            {
                RenewOwner(); // the segment existed, leased, before any successor could list the segments
            }
            catch (ShardFencedException)
            {
                try { blob.Delete(DeleteSnapshotsOption.None, new BlobRequestConditions { LeaseId = _leaseId }); } catch (RequestFailedException) { }
                throw;
            }
        }, "start a WAL segment in");
        return new AppendSegment(this, blob);
    }

    public void Delete(WalSegment segment) => DeleteBlob(SegmentName(segment.FirstSeq));

    private void DeleteBlob(string name) => Azure(() =>
    {
        BlobClient blob = _container.GetBlobClient(name);
        try
        {
            blob.DeleteIfExists(DeleteSnapshotsOption.None, _leased.Contains(name) ? new BlobRequestConditions { LeaseId = _leaseId } : null);
        }
        catch (RequestFailedException e) when (e.Status == 412 && !_leased.Contains(name))
        {
            BreakLease(blob); // a lease left by a fenced-out writer on a blob it abandoned
            blob.DeleteIfExists();
        }
        _leased.Remove(name);
    }, "delete from");

    public void FlushDeletes() { }

    /// <summary>An append blob being written: each group goes down in append blocks of at most 4 MiB, each carrying
    /// the segment's lease and the position it must land at. A failure leaves part of a group behind (a torn tail
    /// for the next replay), so the segment then takes nothing more.</summary>
    private sealed class AppendSegment(BlobShardMedium medium, AppendBlobClient blob) : IWalSegmentWriter
    {
        private long _position;
        private int _blocks;

        public string Name => $"blob://{blob.BlobContainerName}/{blob.Name}";

        public string? Failure { get; private set; }

        public bool Full => _blocks >= blob.AppendBlobMaxBlocks - 1000;

        public void Append(ReadOnlySpan<byte> records)
        {
            if (Failure != null) throw new StorageUnavailableException(Failure);
            int blockMax = AppendBlockBytes;
            byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Min(blockMax, records.Length));
            try
            {
                for (int at = 0; at < records.Length;)
                {
                    int length = Math.Min(blockMax, records.Length - at);
                    records.Slice(at, length).CopyTo(buffer);
                    AppendBlock(buffer, length);
                    at += length;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        private void AppendBlock(byte[] buffer, int length)
        {
            var conditions = new AppendBlobRequestConditions { LeaseId = medium._leaseId, IfAppendPositionEqual = _position };
            try
            {
                blob.AppendBlock(new MemoryStream(buffer, 0, length, writable: false), new AppendBlobAppendBlockOptions { Conditions = conditions });
            }
            catch (RequestFailedException e) when (e.ErrorCode == "AppendPositionConditionNotMet" && LandedAnyway(length))
            {
                // A retry of a block whose first attempt succeeded (the answer was lost): it is there, once.
            }
            catch (RequestFailedException e) when (e.Status is 409 or 412)
            {
                Failure = $"the write-ahead log {Name} was fenced: another owner took the shard over ({e.ErrorCode}); this shard refuses writes";
                throw medium.Fenced($"an append to {Name} was refused ({e.Status} {e.ErrorCode})", e);
            }
            catch (Exception e) when (e is RequestFailedException or AggregateException or IOException)
            {
                Failure = $"the write-ahead log {Name} could not be written ({FirstLine(e.Message)}); part of a group may be there, so this shard refuses writes until it is reopened";
                throw new StorageUnavailableException($"the write-ahead log {Name} could not be written: {FirstLine(e.Message)}", e);
            }
            _position += length;
            _blocks++;
        }

        private bool LandedAnyway(int length)
        {
            try
            {
                return blob.GetProperties().Value.ContentLength == _position + length;
            }
            catch (RequestFailedException)
            {
                return false;
            }
        }

        public void Dispose() { }
    }

    // ---------------------------------------------------------------- snapshots

    public void CleanTemporaries()
    {
        // Uncommitted blocks are invisible and expire by themselves; a local scratch file left by a crash goes.
        if (!Directory.Exists(_scratch)) return;
        foreach (string file in Directory.EnumerateFiles(_scratch, $"*{ScratchPrefix}*")) File.Delete(file); // scratch copies and their save temps
    }

    private string ScratchPrefix => _prefix.Replace('/', '_');

    public long Latest() => Azure(() =>
    {
        string text = Owner.DownloadContent().Value.Content.ToString().Trim();
        if (text.Length == 0)
        {
            _pointer = (0, "");
            return 0L;
        }
        string[] parts = text.Split(' ');
        if (parts.Length != 2 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long seq) || seq <= 0)
            throw new InvalidDataException($"snapshot pointer {Location}owner is corrupt at byte offset 0: '{text}' is not '<seq> <token>'");
        _pointer = (seq, parts[1]);
        return seq;
    }, "read the snapshot pointer of");

    private string SnapshotBlob(long seq, string kind) => $"{_prefix}snap-{seq:D20}.{(seq == _pointer.Seq ? _pointer.Token : _token)}.{kind}";

    public string Name(long seq, string kind) => $"blob://{_container.Name}/{SnapshotBlob(seq, kind)}";

    public long? TreesLength(long seq) => Azure(() =>
    {
        BlobClient blob = _container.GetBlobClient(SnapshotBlob(seq, "trees"));
        try
        {
            return (long?)blob.GetProperties().Value.ContentLength;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }, "read a snapshot of");

    public byte[] ReadIndex(long seq) => Azure(() => _container.GetBlobClient(SnapshotBlob(seq, "index")).DownloadContent().Value.Content.ToArray(), "read a snapshot index of");

    public ITreeBackend LoadTrees(long seq, Func<string, ITreeBackend> loadFile)
    {
        Directory.CreateDirectory(_scratch);
        string local = Path.Combine(_scratch, $"{ScratchPrefix}{Guid.NewGuid():N}.trees");
        try
        {
            Azure(() => _container.GetBlobClient(SnapshotBlob(seq, "trees")).DownloadTo(local), "download a snapshot of");
            try
            {
                return loadFile(local);
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"snapshot {Name(seq, "trees")} (downloaded to {local}): {e.Message}", e);
            }
        }
        finally
        {
            File.Delete(local);
        }
    }

    public void Write(long seq, Action<string> saveTrees, Func<long, byte[]> index)
    {
        RenewOwner();
        Directory.CreateDirectory(_scratch);
        string local = Path.Combine(_scratch, $"{ScratchPrefix}{Guid.NewGuid():N}.trees");
        string trees = $"{_prefix}snap-{seq:D20}.{_token}.trees", indexName = $"{_prefix}snap-{seq:D20}.{_token}.index";
        try
        {
            saveTrees(local);
            long length = new FileInfo(local).Length;
            Azure(() =>
            {
                UploadBlocks(_container.GetBlockBlobClient(trees), local);
                _container.GetBlockBlobClient(indexName).Upload(new MemoryStream(index(length)));
            }, "write a snapshot to");
        }
        finally
        {
            File.Delete(local);
        }
        // The commit: the owner blob names the new snapshot, under our lease. A fenced-out writer's upload stays an
        // orphan the next owner deletes.
        try
        {
            Owner.Upload(new MemoryStream(Encoding.ASCII.GetBytes($"{seq} {_token}")), new BlobUploadOptions { Conditions = new BlobRequestConditions { LeaseId = _leaseId } });
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            throw Fenced($"its snapshot commit at record {seq} was refused ({e.Status} {e.ErrorCode})", e);
        }
        catch (RequestFailedException e)
        {
            throw new StorageUnavailableException($"could not commit a snapshot in {Location}: {e.Status} {e.ErrorCode}", e);
        }
        _pointer = (seq, _token);
    }

    /// <summary>Stages the file in blocks of 8 MiB and commits them: the blob appears whole or not at all.</summary>
    private static void UploadBlocks(BlockBlobClient blob, string path)
    {
        const int BlockBytes = 8 << 20;
        var ids = new List<string>();
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 0);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BlockBytes);
        try
        {
            while (true)
            {
                int read = file.ReadAtLeast(buffer, BlockBytes, throwOnEndOfStream: false);
                if (read == 0 && ids.Count > 0) break;
                string id = Convert.ToBase64String(BitConverter.GetBytes(ids.Count).Concat(BitConverter.GetBytes(0)).ToArray());
                blob.StageBlock(id, new MemoryStream(buffer, 0, read, writable: false));
                ids.Add(id);
                if (read < BlockBytes) break;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        blob.CommitBlockList(ids);
    }

    public void DeleteOthers(long keep, bool olderOnly)
    {
        var doomed = new List<string>();
        Azure(() =>
        {
            foreach (BlobItem blob in _container.GetBlobs(new GetBlobsOptions { Prefix = _prefix + "snap-" }))
            {
                string name = blob.Name[_prefix.Length..];
                if (name.Length < 26 || !long.TryParse(name.AsSpan(5, 20), NumberStyles.None, CultureInfo.InvariantCulture, out long seq)) continue;
                bool current = seq == keep && name.AsSpan(26).StartsWith(_pointer.Token + ".", StringComparison.Ordinal) && _pointer.Seq == keep;
                // After a commit only older snapshots go (a fenced-out writer must never delete a successor's newer
                // one); at recovery, everything but the snapshot the owner blob names.
                if (olderOnly ? seq < keep : !current) doomed.Add(blob.Name);
            }
        }, "list the snapshots of");
        foreach (string name in doomed) DeleteBlob(name);
    }
}
