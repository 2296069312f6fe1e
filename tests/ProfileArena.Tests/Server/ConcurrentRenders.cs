using System.Net;

namespace ProfileArena.Tests.Server;

/// <summary>The check shared by the query-scheduling options' tests: a server started with each value of a setting
/// answers 8 concurrent renders of the same data with the same flame graph, and says in <c>Server-Timing</c> whether
/// the setting moved the query (an entry named after what it did: queued, handed off).</summary>
internal static class ConcurrentRenders
{
    /// <summary>For each of <paramref name="values"/> of <paramref name="setting"/>: 3 pods ingested, 8 renders at once,
    /// each answered 200 with the one graph of all runs; the answers carry <paramref name="timingEntry"/> exactly when
    /// <paramref name="expectsEntry"/> says so for that value.</summary>
    public static async Task AnswerAlike(string setting, string[] values, string timingEntry, Func<string, bool> expectsEntry)
    {
        long t = DateTimeOffset.UtcNow.ToUnixTimeSeconds() / 10 * 10 - 600;
        string folded = "main;work;parse 7\nmain;work;emit 3\nmain;idle 2\n";
        var answers = new Dictionary<string, string>();
        foreach (string value in values)
        {
            await using var server = await InProcessServer.Start(setting, value);
            foreach (string pod in new[] { "a", "b", "c" })
                Assert.Equal(HttpStatusCode.OK, (await Api.IngestFolded(server.Client, $"q.cpu{{pod={pod}}}", folded, t, t + 10)).StatusCode);
            string path = $"/render?query=q.cpu&from={t - 3600}&until={t + 20}&format=json";
            HttpResponseMessage[] responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => server.Client.GetAsync(path, TestContext.Current.CancellationToken)));
            foreach (HttpResponseMessage r in responses)
            {
                using (r)
                {
                    Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                    string timing = string.Join(", ", r.Headers.GetValues("Server-Timing"));
                    Assert.Equal(expectsEntry(value), timing.Contains(timingEntry + ";dur=", StringComparison.Ordinal));
                    string body = await r.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
                    Assert.Contains("\"parse\"", body, StringComparison.Ordinal);
                    // Every answer of every server alike (the same data: the flame graph's bytes).
                    using var json = System.Text.Json.JsonDocument.Parse(body);
                    string graph = json.RootElement.GetProperty("flamebearer").GetRawText();
                    Assert.Equal(36UL, json.RootElement.GetProperty("flamebearer").GetProperty("numTicks").GetUInt64()); // 12 per pod, 3 pods
                    Assert.Equal(answers.TryAdd("graph", graph) ? graph : answers["graph"], graph);
                }
            }
        }
    }
}
