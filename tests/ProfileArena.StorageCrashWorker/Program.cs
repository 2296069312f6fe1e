using ProfileArena.Server.Storage;
using ProfileArena.StorageCrashWorker;

// Usage: ProfileArena.StorageCrashWorker DATA_DIR FIRST_CALL
// Four writers ingest calls FIRST_CALL, FIRST_CALL+1, … concurrently (so group commits are shared), printing
// "ack N" as each call is acknowledged, and snapshot now and then, until the test kills the process.
string dataDir = args[0];
long first = long.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture);
var storage = new ProfileStorage(new StorageOptions { DataDir = dataDir, ShardCount = 4, LevelRetentionSeconds = [], SnapshotIntervalSeconds = 0, WalSnapshotBytes = 64 << 10 });
await storage.OpenAsync();
Console.Out.Flush();
var stdout = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
stdout.WriteLine("ready");
long next = first - 1;
object gate = new();
var writers = Enumerable.Range(0, 4).Select(async _ =>
{
    while (true)
    {
        long call = Interlocked.Increment(ref next);
        await storage.IngestAsync(CrashWorkload.Call(call), CancellationToken.None);
        lock (gate) stdout.WriteLine($"ack {call}");
        if (call % 40 == 0) await storage.SnapshotAsync();
    }
}).ToArray();
await Task.WhenAll(writers);
