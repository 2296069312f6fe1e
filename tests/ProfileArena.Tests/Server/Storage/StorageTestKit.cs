using System.Text;
using ProfileArena.Server.Storage;

namespace ProfileArena.Tests.Server.Storage;

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualClock(long unixSeconds) : TimeProvider
{
    public long Now { get; set; } = unixSeconds;

    public override DateTimeOffset GetUtcNow() => DateTimeOffset.FromUnixTimeSeconds(Now);
}

/// <summary>A fresh data directory under the temp folder, deleted at the end.</summary>
public sealed class TempDataDir : IDisposable
{
    public TempDataDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "pa-storage-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>
/// The plain reference model of the storage: (series, 10 s bucket) → stack → value, filled by the same
/// profiles the storage acknowledged. Queries sum the buckets in the normalised range.
/// </summary>
public sealed class ReferenceModel
{
    private readonly Dictionary<(SeriesKey Series, long Bucket), Dictionary<string, ulong>> _buckets = [];

    public void Add(IngestProfile p)
    {
        if (p.Stacks.Count == 0) return;
        var key = (p.Series, BucketMath.Floor(p.FromSeconds, 0));
        if (!_buckets.TryGetValue(key, out var stacks)) _buckets[key] = stacks = [];
        for (int i = 0; i < p.Stacks.Count; i++)
        {
            string stack = Encoding.UTF8.GetString(p.Stacks.Stack(i));
            stacks[stack] = stacks.GetValueOrDefault(stack) + p.Stacks.Value(i);
        }
    }

    public Dictionary<string, ulong> Query(string tenant, SeriesSelector selector, long from, long until)
    {
        var (f, u) = BucketMath.Normalize(from, until);
        var result = new Dictionary<string, ulong>();
        foreach (var ((series, bucket), stacks) in _buckets)
        {
            if (series.Tenant != tenant || !selector.Matches(series) || bucket < f || bucket >= u) continue;
            foreach (var (stack, value) in stacks) result[stack] = result.GetValueOrDefault(stack) + value;
        }
        return result;
    }

    public ulong Total(string tenant, SeriesSelector selector, long from, long until) =>
        Query(tenant, selector, from, until).Values.Aggregate(0UL, (a, v) => a + v);

    public List<SeriesKey> Series(string tenant, SeriesSelector? selector, long from, long until)
    {
        var (f, u) = BucketMath.Normalize(from, until);
        return [.. _buckets.Keys.Where(k => k.Series.Tenant == tenant && (selector == null || selector.Matches(k.Series)) && k.Bucket >= f && k.Bucket < u)
            .Select(k => k.Series).Distinct().OrderBy(k => k.Canonical, StringComparer.Ordinal)];
    }

    public IEnumerable<SeriesKey> AllSeries => _buckets.Keys.Select(k => k.Series).Distinct();
}

public static class StorageTestKit
{
    public static StorageOptions Options(string dir, int shards = 3, long[]? retention = null, long budget = 0) => new()
    {
        DataDir = dir,
        ShardCount = shards,
        LevelRetentionSeconds = retention ?? [],
        MaxNativeBytes = budget,
        SnapshotIntervalSeconds = 0,
    };

    public static async Task<ProfileStorage> OpenAsync(StorageOptions options, TimeProvider? time = null)
    {
        var storage = new ProfileStorage(options, time);
        await storage.OpenAsync(TestContext.Current.CancellationToken);
        Assert.True(storage.IsReady);
        return storage;
    }

    /// <summary>The tree as stack → self for every node with self &gt; 0 (what the reference model holds).</summary>
    public static Dictionary<string, ulong> Selves(ProfileTree tree)
    {
        var result = new Dictionary<string, ulong>();
        tree.Iterate((stack, self, _) =>
        {
            if (self > 0) result[Encoding.UTF8.GetString(stack)] = self;
        });
        return result;
    }

    public static Dictionary<string, ulong> QueryStacks(IProfileStorage storage, string tenant, SeriesSelector selector, long from, long until, out QueryResult result)
    {
        using var store = new TreeStore();
        ProfileTree destination = store.CreateTree();
        result = storage.Query(tenant, selector, from, until, destination);
        return Selves(destination);
    }

    public static void AssertSame(Dictionary<string, ulong> expected, Dictionary<string, ulong> actual, string context)
    {
        var e = expected.Where(kv => kv.Value > 0).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var a = actual.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        if (!e.SequenceEqual(a))
        {
            string missing = string.Join(", ", e.Except(a).Take(5));
            string extra = string.Join(", ", a.Except(e).Take(5));
            Assert.Fail($"{context}: {e.Count} expected stacks, {a.Count} stored; expected but not stored: [{missing}]; stored but not expected: [{extra}]");
        }
    }

    public static SeriesKey Key(string tenant, string name, params (string, string)[] labels) =>
        new(tenant, name, labels.Select(l => new Label(l.Item1, l.Item2)));

    public static SeriesSelector Selector(string name, params LabelMatcher[] matchers) => new(name, matchers);

    public static IngestProfile Profile(SeriesKey series, long from, params (string Stack, ulong Value)[] stacks)
    {
        var batch = new StackBatch();
        foreach (var (stack, value) in stacks) batch.Add(Encoding.UTF8.GetBytes(stack), value);
        return new IngestProfile(series, from, from + 10, SeriesMetadata.Default, batch);
    }

    /// <summary>Random stacks over a small vocabulary (so trees share prefixes and merges overlap).</summary>
    public static IngestProfile RandomProfile(Random random, SeriesKey series, long from)
    {
        string[] frames = ["main", "run", "parse", "a", "b", "gc", "read;x", "ü", "sp ace"];
        var batch = new StackBatch();
        int count = random.Next(1, 6);
        for (int i = 0; i < count; i++)
        {
            int depth = random.Next(1, 5);
            string stack = string.Join(';', Enumerable.Range(0, depth).Select(_ => frames[random.Next(frames.Length)]));
            batch.Add(Encoding.UTF8.GetBytes(stack), (ulong)random.Next(1, 1000));
        }
        var metadata = new SeriesMetadata("gospy", 100, "samples", "sum");
        return new IngestProfile(series, from, from + random.Next(0, 30), metadata, batch);
    }
}
