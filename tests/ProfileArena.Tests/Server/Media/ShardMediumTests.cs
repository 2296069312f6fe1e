using System.Text;
using Azure.Storage.Blobs.Models;
using ProfileArena.Server.Storage;
using ProfileArena.Server.Storage.Media;
using ProfileArena.Server.Storage.Shards;
using ProfileArena.Server.Storage.Wal;
using ProfileArena.Tests.Server.Storage;
using static ProfileArena.Tests.Server.Storage.StorageTestKit;

namespace ProfileArena.Tests.Server.Media;

/// <summary>
/// The same durability rules on both shard media (a theory over Local and Blob, Blob on the shared Azurite):
/// acknowledged writes survive a crash exactly, a torn WAL tail is cut, a corrupt middle record stops startup
/// naming segment and offset, snapshot + replay; on Blob, a group torn between append blocks, and fencing: a
/// predecessor whose lease a successor broke writes nothing more.
/// </summary>
public class ShardMediumTests(AzuriteFixture azurite)
{
    private const long T0 = 1_700_000_000;
    private const string Tenant = "acme";
    private static readonly SeriesSelector All = Selector("app.cpu");

    public static TheoryData<string> Media => new("Local", "Blob");

    private static IngestProfile Numbered(int i) =>
        Profile(Key(Tenant, "app.cpu", ("host", $"h{i % 3}")), T0 + 10 * (i % 7), ($"main;work{i}", (ulong)(i + 1)), ("main;shared", 7));

    private static async Task AssertContents(MediumKit kit, ReferenceModel model, string context)
    {
        using var storage = await OpenAsync(kit.Options(shards: 2));
        AssertSame(model.Query(Tenant, All, T0 - 100, T0 + 1000), QueryStacks(storage, Tenant, All, T0 - 100, T0 + 1000, out _), $"{kit.Kind}: {context}");
    }

    [Theory]
    [MemberData(nameof(Media))]
    public async Task Acknowledged_writes_survive_crashes_snapshots_and_stops_exactly(string medium)
    {
        await using MediumKit kit = await MediumKit.CreateAsync(medium, azurite);
        var model = new ReferenceModel();
        var random = new Random(15);
        CancellationToken ct = TestContext.Current.CancellationToken;
        for (int round = 0; round < 3; round++)
        {
            var storage = await OpenAsync(kit.Options(shards: 2));
            for (int i = 0; i < 12; i++)
            {
                IngestProfile p = RandomProfile(random, Key(Tenant, "app.cpu", ("host", $"h{random.Next(4)}")), T0 + 10 * random.Next(50));
                await storage.IngestAsync([p], ct);
                model.Add(p);
            }
            if (round == 1)
            {
                // Two snapshots by one owner (the second commit must still hold the owner's lease), records after
                // each, the last ones replayed on top of the second snapshot.
                for (int snapshot = 0; snapshot < 2; snapshot++)
                {
                    await storage.SnapshotAsync();
                    IngestProfile late = RandomProfile(random, Key(Tenant, "app.cpu", ("host", "h0")), T0 + 20 + snapshot);
                    await storage.IngestAsync([late], ct);
                    model.Add(late);
                }
            }
            if (round == 2) await storage.StopAsync(snapshot: true);
            storage.Dispose(); // rounds 0 and 1: a crash (no snapshot at stop)
            await AssertContents(kit, model, $"after round {round}");
        }
        Assert.Empty(kit.Segments()); // the stop snapshot retired every segment with records (a new one is empty)
    }

    [Theory]
    [MemberData(nameof(Media))]
    public async Task A_torn_tail_is_cut_and_the_log_goes_on(string medium)
    {
        await using MediumKit kit = await MediumKit.CreateAsync(medium, azurite);
        var before = new ReferenceModel();
        var storage = await OpenAsync(kit.Options());
        for (int i = 0; i < 4; i++)
        {
            await storage.IngestAsync([Numbered(i)], TestContext.Current.CancellationToken);
            if (i < 3) before.Add(Numbered(i));
        }
        storage.Dispose();
        var (name, bytes) = Assert.Single(kit.Segments());
        var offsets = new List<long>();
        WalLog.ReadSegment(bytes, name, last: true, r => offsets.Add(r.Offset));
        Assert.Equal(4, offsets.Count);
        // Torn anywhere inside the last record: at its first byte, in its header, in its payload, one byte short.
        long last = offsets[^1];
        foreach (long keep in new[] { last + 1, last + 10, (last + bytes.Length) / 2, bytes.Length - 1 })
        {
            kit.Rewrite(name, bytes[..(int)keep]);
            await AssertContents(kit, before, $"torn at {keep} of {bytes.Length}");
            // The cut holds: what a reader sees of the segment ends at the last whole record.
            Assert.Equal(last, kit.Segments().Single(s => s.Name == name).Bytes.Length);
        }
        // The log goes on after the cut, and a restart reads both the cut segment and what followed.
        var after = await OpenAsync(kit.Options());
        await after.IngestAsync([Numbered(9)], TestContext.Current.CancellationToken);
        before.Add(Numbered(9));
        after.Dispose();
        await AssertContents(kit, before, "after the cut and one more write");
    }

    [Theory]
    [MemberData(nameof(Media))]
    public async Task A_corrupt_middle_record_stops_startup_naming_segment_and_offset(string medium)
    {
        await using MediumKit kit = await MediumKit.CreateAsync(medium, azurite);
        var storage = await OpenAsync(kit.Options());
        for (int i = 0; i < 3; i++) await storage.IngestAsync([Numbered(i)], TestContext.Current.CancellationToken);
        storage.Dispose();
        var (name, bytes) = Assert.Single(kit.Segments());
        var offsets = new List<long>();
        WalLog.ReadSegment(bytes, name, last: true, r => offsets.Add(r.Offset));
        byte[] flipped = (byte[])bytes.Clone();
        int at = (int)offsets[1] + 30; // inside the second record's payload: the third follows intact
        flipped[at] ^= 0x40;
        kit.Rewrite(name, flipped);
        var reopened = new ProfileStorage(kit.Options());
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => reopened.OpenAsync(TestContext.Current.CancellationToken));
        reopened.Dispose();
        Assert.Contains(Path.GetFileName(name), e.Message); // a blob: blob://container/<tenant dir>/shard-0/wal-….log
        Assert.Contains($"byte offset {offsets[1]}", e.Message);
        if (kit.IsBlob) Assert.Contains($"blob://{kit.Container!.Name}/", e.Message);
        // Nothing was changed: the segment still holds the flipped byte and its full length.
        Assert.Equal(flipped, kit.Segments().Single().Bytes);
    }

    [Theory]
    [MemberData(nameof(Media))]
    public async Task Tenants_with_hostile_names_are_found_again_and_see_only_their_own_data(string medium)
    {
        await using MediumKit kit = await MediumKit.CreateAsync(medium, azurite);
        string[] tenants = ["acme", "../Evil/%2F?x=1#frag", "ü名前 with spaces", new string('z', 150)];
        var models = tenants.ToDictionary(t => t, _ => new ReferenceModel());
        var storage = await OpenAsync(kit.Options(shards: 2));
        for (int i = 0; i < 16; i++)
        {
            string tenant = tenants[i % tenants.Length];
            IngestProfile p = Profile(Key(tenant, "app.cpu", ("host", $"h{i % 3}")), T0 + 10 * i, ($"main;{tenant};w{i}", (ulong)i + 1));
            await storage.IngestAsync([p], TestContext.Current.CancellationToken);
            models[tenant].Add(p);
        }
        storage.Dispose(); // crash: found again from tenant.name + shard-N on the medium, WAL replayed
        using var reopened = await OpenAsync(kit.Options(shards: 2));
        foreach (string tenant in tenants)
            AssertSame(models[tenant].Query(tenant, All, T0 - 100, T0 + 1000), QueryStacks(reopened, tenant, All, T0 - 100, T0 + 1000, out _), $"{medium}: tenant {tenant}");
    }

    [Fact]
    public async Task A_group_torn_between_append_blocks_is_cut_like_a_torn_file_tail()
    {
        await using MediumKit kit = await MediumKit.CreateAsync("Blob", azurite);
        var model = new ReferenceModel();
        var storage = await OpenAsync(kit.Options());
        await storage.IngestAsync([Numbered(0)], TestContext.Current.CancellationToken);
        model.Add(Numbered(0));
        // One record of ≈ 6 MiB: more than one 4 MiB append block.
        var big = new StackBatch();
        for (int i = 0; i < 6000; i++) big.Add(Encoding.UTF8.GetBytes($"main;{new string('x', 1000)};f{i}"), (ulong)i + 1);
        var profile = new IngestProfile(Key(Tenant, "app.cpu", ("host", "big")), T0, T0 + 10, SeriesMetadata.Default, big);
        await storage.IngestAsync([profile], TestContext.Current.CancellationToken);
        storage.Dispose();
        var (name, bytes) = Assert.Single(kit.Segments());
        BlobProperties props = (await kit.Container!.GetBlobClient(name).GetPropertiesAsync(cancellationToken: TestContext.Current.CancellationToken)).Value;
        Assert.True(props.BlobCommittedBlockCount >= 3, $"{props.BlobCommittedBlockCount} blocks: the big group should span two");
        var offsets = new List<long>();
        WalLog.ReadSegment(bytes, name, last: true, r => offsets.Add(r.Offset));
        Assert.Equal(2, offsets.Count);
        // A crash after the group's first block: the blob ends 4 MiB into the big record.
        int firstBlockEnd = (int)offsets[1] + (4 << 20);
        kit.Rewrite(name, bytes[..firstBlockEnd]);
        await AssertContents(kit, model, "group torn after its first block");
        Assert.Equal(offsets[1], kit.Segments().Single(s => s.Name == name).Bytes.Length);
    }

    [Fact]
    public async Task A_fenced_out_predecessor_writes_nothing_after_its_successor_took_over()
    {
        await using MediumKit kit = await MediumKit.CreateAsync("Blob", azurite);
        var acknowledged = new ReferenceModel();
        Shard a = kit.OpenShard(Tenant);
        for (int i = 0; i < 3; i++)
        {
            await a.Enqueue(Shard.WorkKind.Ingest, [Numbered(i)], 0);
            acknowledged.Add(Numbered(i));
        }
        // The successor (another silo, after A was declared dead): breaks A's lease, replays what A acknowledged.
        Shard b = kit.OpenShard(Tenant);
        var refused = await Assert.ThrowsAnyAsync<StorageUnavailableException>(() => a.Enqueue(Shard.WorkKind.Ingest, [Numbered(10)], 0));
        Assert.IsType<ShardFencedException>(refused);
        // A's snapshot is refused too, and A refuses further writes without trying.
        await Assert.ThrowsAnyAsync<StorageUnavailableException>(() => a.Enqueue(Shard.WorkKind.Snapshot, null, 0));
        await Assert.ThrowsAnyAsync<StorageUnavailableException>(() => a.Enqueue(Shard.WorkKind.Ingest, [Numbered(11)], 0));
        // B goes on writing, snapshots and stops cleanly.
        await b.Enqueue(Shard.WorkKind.Ingest, [Numbered(20)], 0);
        acknowledged.Add(Numbered(20));
        await b.Enqueue(Shard.WorkKind.Snapshot, null, 0);
        await b.Enqueue(Shard.WorkKind.Ingest, [Numbered(21)], 0);
        acknowledged.Add(Numbered(21));
        await Assert.ThrowsAnyAsync<StorageUnavailableException>(() => a.Enqueue(Shard.WorkKind.Ingest, [Numbered(12)], 0));
        await a.StopAsync(snapshot: true); // A's stop snapshot is refused (logged), nothing written
        await b.StopAsync(snapshot: false);
        a.Dispose();
        b.Dispose();
        await AssertContents(kit, acknowledged, "after the takeover: A's acknowledged records and B's, nothing of A's refused writes");
    }

    [Fact]
    public async Task A_predecessor_that_only_snapshots_after_the_takeover_is_refused()
    {
        await using MediumKit kit = await MediumKit.CreateAsync("Blob", azurite);
        var acknowledged = new ReferenceModel();
        Shard a = kit.OpenShard(Tenant);
        await a.Enqueue(Shard.WorkKind.Ingest, [Numbered(1)], 0);
        acknowledged.Add(Numbered(1));
        Shard b = kit.OpenShard(Tenant);
        var e = await Assert.ThrowsAnyAsync<StorageUnavailableException>(() => a.Enqueue(Shard.WorkKind.Snapshot, null, 0));
        Assert.IsType<ShardFencedException>(e);
        await Assert.ThrowsAnyAsync<StorageUnavailableException>(() => a.Enqueue(Shard.WorkKind.Ingest, [Numbered(2)], 0));
        await b.Enqueue(Shard.WorkKind.Ingest, [Numbered(3)], 0);
        acknowledged.Add(Numbered(3));
        await b.StopAsync(snapshot: true);
        a.Dispose();
        b.Dispose();
        // The successor's snapshot is the one the owner blob names; A left no snapshot behind.
        Assert.DoesNotContain(kit.Container!.GetBlobs(cancellationToken: TestContext.Current.CancellationToken).Select(x => x.Name), n => n.Contains("/snap-", StringComparison.Ordinal) && !n.Contains("/snap-00000000000000000002.", StringComparison.Ordinal));
        await AssertContents(kit, acknowledged, "after A's refused snapshot");
    }

    [Fact]
    public async Task Local_and_blob_media_answer_queries_byte_for_byte_alike()
    {
        await using MediumKit local = await MediumKit.CreateAsync("Local", azurite);
        await using MediumKit blob = await MediumKit.CreateAsync("Blob", azurite);
        var random = new Random(1515);
        var profiles = new List<IngestProfile>();
        for (int i = 0; i < 40; i++) profiles.Add(RandomProfile(random, Key(Tenant, random.Next(2) == 0 ? "app.cpu" : "app.alloc", ("host", $"h{random.Next(5)}")), T0 + 10 * random.Next(200)));
        foreach (MediumKit kit in new[] { local, blob })
        {
            var storage = await OpenAsync(kit.Options(shards: 3));
            for (int i = 0; i < profiles.Count; i++)
            {
                await storage.IngestAsync([profiles[i]], TestContext.Current.CancellationToken);
                if (i == 25) await storage.SnapshotAsync();
            }
            storage.Dispose(); // crash: snapshot + WAL replay on reopen
        }
        using var fromLocal = await OpenAsync(local.Options(shards: 3));
        using var fromBlob = await OpenAsync(blob.Options(shards: 3));
        foreach (SeriesSelector selector in new[] { All, Selector("app.alloc"), Selector("app.cpu", new LabelMatcher("host", MatchOp.Equal, "h1")) })
        {
            foreach (var (from, until) in new[] { (T0, T0 + 2000), (T0 + 100, T0 + 700), (T0 - 5000, T0 + 90000) })
            {
                Assert.Equal(Render(fromLocal, selector, from, until), Render(fromBlob, selector, from, until));
            }
        }
        Assert.Equal(fromLocal.Series(Tenant, null, T0, T0 + 2000), fromBlob.Series(Tenant, null, T0, T0 + 2000));
    }

    /// <summary>A query's answer as bytes: the folded tree (stack order as stored) and the timeline.</summary>
    private static byte[] Render(ProfileStorage storage, SeriesSelector selector, long from, long until)
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        QueryResult result = storage.Query(Tenant, selector, from, until, tree);
        var text = new StringBuilder();
        tree.Iterate((stack, self, total) => text.Append(Encoding.UTF8.GetString(stack)).Append(' ').Append(self).Append(' ').Append(total).Append('\n'));
        text.Append(string.Join(",", result.Timeline.Samples)).Append('|').Append(result.Timeline.StartTime).Append('|').Append(result.Series);
        return Encoding.UTF8.GetBytes(text.ToString());
    }
}

/// <summary>Storage:Medium and its blob settings are checked like every other storage setting.</summary>
public class ShardMediumOptionsTests
{
    [Theory]
    [InlineData("Disk", null, "profilearena", "Storage:Medium must be Local or AzureBlob")]
    [InlineData("AzureBlob", null, "profilearena", "Storage:BlobConnectionString must be set")]
    [InlineData("AzureBlob", "not a connection string", "profilearena", "Storage:BlobConnectionString is not")]
    [InlineData("AzureBlob", "UseDevelopmentStorage=true", "Bad_Name", "Storage:BlobContainer must be")]
    [InlineData("AzureBlob", "UseDevelopmentStorage=true", "ab", "Storage:BlobContainer must be")]
    public void Bad_medium_settings_are_refused_naming_the_key(string medium, string? connection, string container, string expected)
    {
        var options = new StorageOptions { Medium = medium, BlobConnectionString = connection, BlobContainer = container };
        var e = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void The_default_is_the_local_medium_and_azure_blob_parses_case_insensitively()
    {
        Assert.False(new StorageOptions().IsBlobMedium);
        var options = new StorageOptions { Medium = "azureblob", BlobConnectionString = "UseDevelopmentStorage=true" };
        options.Validate();
        Assert.True(options.IsBlobMedium);
    }
}
