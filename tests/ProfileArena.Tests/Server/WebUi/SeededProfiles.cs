using System.Net.Http.Headers;

namespace ProfileArena.Tests.Server.WebUi;

/// <summary>One profile pushed to the server: a series (app + labels), a 10 s window, folded stacks.</summary>
public sealed record SeededProfile(string App, (string Name, string Value)[] Labels, long From, (string Stack, long Value)[] Stacks)
{
    /// <summary>The ingest <c>name</c> parameter: <c>app{k=v,...}</c>.</summary>
    public string IngestName => Labels.Length == 0 ? App : $"{App}{{{string.Join(',', Labels.Select(l => $"{l.Name}={l.Value}"))}}}";

    public string? Label(string name) => Labels.FirstOrDefault(l => l.Name == name).Value;
}

/// <summary>
/// Known profiles at known times, pushed through the real HTTP ingest (folded bodies), and a plain model
/// of what the page must show for them: the flame graph table's self and total per function.
/// </summary>
public sealed class SeededProfiles
{
    public const int SampleRate = 100;

    public SeededProfiles(long nowSeconds)
    {
        // Two windows 15 minutes apart, well inside "last 1 h", on 10 s bucket boundaries.
        Window1 = nowSeconds / 10 * 10 - 1800;
        Window2 = Window1 + 900;
        RangeFrom = Window1 - 300;
        RangeUntil = Window2 + 300;
        All =
        [
            new("shop.cpu", [("env", "prod"), ("region", "eu")], Window1,
                [("main;work;compute", 300), ("main;work;io", 100), ("main;idle", 50)]),
            new("shop.cpu", [("env", "prod"), ("region", "eu")], Window2,
                [("main;work;compute", 20), ("main;render;paint", 700)]),
            new("shop.cpu", [("env", "dev"), ("region", "us")], Window1,
                [("main;devonly", 40)]),
            new("billing.cpu", [("env", "prod"), ("region", "us")], Window1,
                [("billing;charge", 77)]),
        ];
    }

    public long Window1 { get; }
    public long Window2 { get; }
    public long RangeFrom { get; }
    public long RangeUntil { get; }
    public IReadOnlyList<SeededProfile> All { get; }

    /// <summary>Pushes every profile with POST /ingest (folded, the default format), each acknowledged.</summary>
    public async Task IngestAsync(Uri server, string? bearerKey = null, IEnumerable<SeededProfile>? profiles = null)
    {
        using var http = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromSeconds(30) };
        if (bearerKey is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearerKey);
        foreach (SeededProfile p in profiles ?? All)
        {
            string body = string.Join('\n', p.Stacks.Select(s => $"{s.Stack} {s.Value}")) + "\n";
            string url = $"ingest?name={Uri.EscapeDataString(p.IngestName)}&from={p.From}&until={p.From + 10}&sampleRate={SampleRate}&spyName=gospy&units=samples";
            using var response = await http.PostAsync(url, new StringContent(body));
            string answer = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, $"ingest {p.IngestName} at {p.From}: {(int)response.StatusCode} {answer}");
        }
    }

    /// <summary>The stacks of <paramref name="app"/> whose labels match and whose window lies in [from, until).</summary>
    public IEnumerable<(string Stack, long Value)> Stacks(string app, long from, long until, Func<SeededProfile, bool>? labels = null) =>
        All.Where(p => p.App == app && p.From >= from && p.From < until && (labels is null || labels(p))).SelectMany(p => p.Stacks);

    /// <summary>
    /// The flame graph table as pyroscope's component computes it from a merged tree: per function name,
    /// self = values of stacks ending in it, total = values of stacks containing it; plus the root row
    /// "total" (self 0, total = everything). No seeded stack names a function twice (the component adds
    /// a recursive function's total at every depth, which this model would not).
    /// </summary>
    public static Dictionary<string, (long Self, long Total)> Table(IEnumerable<(string Stack, long Value)> stacks)
    {
        var table = new Dictionary<string, (long Self, long Total)>(StringComparer.Ordinal);
        long all = 0;
        foreach (var (stack, value) in stacks)
        {
            all += value;
            string[] frames = stack.Split(';');
            Assert.Equal(frames.Length, frames.Distinct().Count()); // not recursive: see above
            foreach (string f in frames)
            {
                var (self, total) = table.GetValueOrDefault(f);
                table[f] = (self, total + value);
            }
            var leaf = table[frames[^1]];
            table[frames[^1]] = (leaf.Self + value, leaf.Total);
        }
        if (all > 0) table["total"] = (0, all);
        return table;
    }
}
