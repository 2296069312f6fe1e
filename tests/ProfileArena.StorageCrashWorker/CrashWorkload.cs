using System.Text;
using ProfileArena.Server.Storage;

namespace ProfileArena.StorageCrashWorker;

/// <summary>
/// The calls of the crash test, a pure function of the call number, so the test can rebuild what any call
/// stored: every call's stacks are unique to it (<c>call_N</c> frames), some calls hold two sample types of one
/// upload (one shard), and every fifth call also writes a second app (usually another shard: a two-phase call).
/// </summary>
public static class CrashWorkload
{
    public const long T0 = 1_700_000_000;

    public static SeriesKey[] SeriesOf(long call) => (call % 5) switch
    {
        0 => [Key("app.cpu", call), Key("other.cpu", call)],
        1 or 2 => [Key("app.cpu", call), Key("app.alloc_space", call)],
        _ => [Key("app.cpu", call)],
    };

    private static SeriesKey Key(string name, long call) => new("crash", name, [new Label("pod", $"p{call % 3}")]);

    public static List<IngestProfile> Call(long call)
    {
        var profiles = new List<IngestProfile>();
        foreach (SeriesKey series in SeriesOf(call))
        {
            var batch = new StackBatch();
            for (int i = 0; i < 3; i++) batch.Add(Encoding.UTF8.GetBytes($"main;call_{call};f{i}"), (ulong)(call * 10 + i + 1));
            profiles.Add(new IngestProfile(series, T0 + call * 7 % 3600, T0 + call * 7 % 3600 + 10, SeriesMetadata.Default, batch));
        }
        return profiles;
    }
}
