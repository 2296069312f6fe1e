using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Server.Faults;

/// <summary>
/// Pushes whose every stack starts with a frame naming the push (<c>push17;…</c>), built from a real collapsed
/// file of ../shared/testdata, so that what the server holds can be compared push by push with what the
/// client saw acknowledged: an acknowledged push must be there exactly, an unacknowledged one (refused, or in
/// flight when the server died) either exactly or not at all — never twice, never in part — and, once a check
/// has seen it present or absent, the same at every later check (an in-flight push made durable stays; one that
/// was lost never reappears). <see cref="Verify"/> runs when no push is in flight (after a restart, after load).
/// </summary>
public sealed class PushLedger
{
    public const string Series = "faults.cpu";

    private readonly string[] _lines;
    private readonly ConcurrentDictionary<int, Dictionary<string, ulong>> _expected = new();
    private readonly ConcurrentDictionary<int, bool> _acknowledged = new();
    private readonly ConcurrentDictionary<int, bool> _settled = new(); // unacknowledged push → present at the first check after it
    private int _next;

    public PushLedger(string collapsedFile = "collapsed/FlameGraph/perf-java-stacks-01-collapsed-all.txt")
    {
        string path = Path.Combine(SharedData.TestData, collapsedFile);
        Assert.True(File.Exists(path), $"shared test data missing: {path}");
        _lines = [.. File.ReadAllLines(path).Where(l => l.LastIndexOf(' ') > 0)];
    }

    public int Acknowledged => _acknowledged.Count(kv => kv.Value);

    /// <summary>Unacknowledged pushes seen by a check: (stored, absent).</summary>
    public (int Stored, int Absent) Settled => (_settled.Count(kv => kv.Value), _settled.Count(kv => !kv.Value));

    public int Issued => _next;

    /// <summary>A new push: id and folded body of <paramref name="stacks"/> lines of the real file (random subset).</summary>
    public (int Id, string Body) Next(Random random, int stacks = 12, bool renameLeaves = false)
    {
        int id = Interlocked.Increment(ref _next);
        var expected = new Dictionary<string, ulong>(StringComparer.Ordinal);
        var sb = new StringBuilder();
        for (int i = 0; i < stacks; i++)
        {
            string line = _lines[random.Next(_lines.Length)];
            int space = line.LastIndexOf(' ');
            string stack = $"push{id};{line[..space]}";
            if (renameLeaves) stack += $";leaf{id}_{i}";
            ulong value = ulong.Parse(line[(space + 1)..], CultureInfo.InvariantCulture) % 1000 + 1;
            expected[stack] = expected.GetValueOrDefault(stack) + value;
            sb.Append(stack).Append(' ').Append(value).Append('\n');
        }
        _expected[id] = expected;
        _acknowledged[id] = false;
        return (id, sb.ToString());
    }

    public void Acknowledge(int id) => _acknowledged[id] = true;

    /// <summary>Posts one push to <paramref name="client"/>; records it acknowledged on 2xx. Returns the status (0: no answer).</summary>
    public async Task<HttpStatusCode> Push(HttpClient client, Random random, long from, int stacks = 12, bool renameLeaves = false)
    {
        var (id, body) = Next(random, stacks, renameLeaves);
        try
        {
            using HttpResponseMessage r = await Api.IngestFolded(client, Series + "{test=faults}", body, from, from + 10);
            if (r.IsSuccessStatusCode) Acknowledge(id);
            return r.StatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            return 0;
        }
    }

    /// <summary>Checks what the server holds against the ledger (see the class summary).</summary>
    public async Task Verify(HttpClient client, string when)
    {
        Dictionary<string, ulong> stored = await Api.Stacks(client, Series + "{}");
        var byPush = new Dictionary<int, Dictionary<string, ulong>>();
        foreach (var (stack, value) in stored)
        {
            if (value == 0) continue; // inner nodes (render lists every node; inner ones carry no self here)
            int semi = stack.IndexOf(';');
            string head = semi < 0 ? stack : stack[..semi];
            Assert.True(head.StartsWith("push", StringComparison.Ordinal) && int.TryParse(head.AsSpan(4), out _), $"{when}: a stack that no push sent: {stack}");
            int id = int.Parse(head.AsSpan(4), CultureInfo.InvariantCulture);
            if (!byPush.TryGetValue(id, out var stacks)) byPush[id] = stacks = new(StringComparer.Ordinal);
            stacks[stack] = value;
        }
        int present = 0;
        foreach (var (id, expected) in _expected)
        {
            bool acked = _acknowledged[id];
            bool isStored = byPush.Remove(id, out var got);
            if (isStored)
            {
                present++;
                Assert.True(Same(expected, got!), $"{when}: push {id} ({(acked ? "acknowledged" : "not acknowledged")}) is stored, but not exactly once: expected {Describe(expected)}, stored {Describe(got!)}");
            }
            else
            {
                Assert.False(acked, $"{when}: acknowledged push {id} is missing");
            }
            if (acked) continue;
            // Stability of the pushes whose fate the client never learnt: the first check decides, later ones agree.
            bool first = _settled.GetOrAdd(id, isStored);
            Assert.True(first == isStored, $"{when}: unacknowledged push {id} was {(first ? "stored" : "absent")} at an earlier check and is now {(isStored ? "stored" : "absent")}");
        }
        Assert.True(byPush.Count == 0, $"{when}: stored pushes that were never sent: {string.Join(", ", byPush.Keys)}");
        Assert.True(present >= Acknowledged, $"{when}: {present} pushes stored, {Acknowledged} acknowledged");
    }

    private static bool Same(Dictionary<string, ulong> a, Dictionary<string, ulong> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out ulong v) && v == kv.Value);

    private static string Describe(Dictionary<string, ulong> d) => $"{d.Count} stacks, total {d.Values.Aggregate(0UL, (x, y) => x + y)}";
}

/// <summary>Bounds of the fault loops: short in CI, longer by hand (PA_FAULT_ROUNDS, PA_FAULT_SECONDS).</summary>
public static class FaultBudget
{
    public static int Rounds => int.TryParse(Environment.GetEnvironmentVariable("PA_FAULT_ROUNDS"), out int n) && n > 0 ? n : 3;

    public static TimeSpan Deadline => TimeSpan.FromSeconds(int.TryParse(Environment.GetEnvironmentVariable("PA_FAULT_SECONDS"), out int s) && s > 0 ? s : 90);
}
