using System.Net;
using System.Text.Json;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Server;

/// <summary>
/// The query path allocates nothing on the Large Object Heap in steady state: the server-load run's allocation
/// ticks showed each 1 h / 24 h render putting a set of every timeline piece (a day at 10 s steps: 8,640 entries)
/// and its growing response buffer there, and every such allocation brings the next background gen2 collection
/// closer (ten of them in an 80 s run at 100 M nodes). Measured like <see cref="IngestLargeObjectHeapTests"/>:
/// the runtime's allocation ticks of kind Large over a loop of renders after warm-up, with the answers checked.
/// </summary>
[Collection(nameof(ProcessGcFigures))]
public sealed class RenderLargeObjectHeapTests
{
    private const int WarmUp = 3, Measured = 8;

    [Fact]
    public async Task SteadyStateRendersOfADayAllocateNothingOnTheLargeObjectHeap()
    {
        CancellationToken cancel = TestContext.Current.CancellationToken;
        // A real collapsed file (vert.x perf stacks), its lines dealt to pushes spread over the last day.
        string[] lines = File.ReadAllLines(Path.Combine(SharedData.TestData, "collapsed/FlameGraph/perf-vertx-stacks-01-collapsed-all.txt"))
            .Where(l => l.Length > 0).ToArray();
        await using InProcessServer server = await InProcessServer.Start();
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var random = new Random(1129);
        ulong pushed = 0;
        for (int i = 0; i < 96; i++)
        {
            long from = (now - 86_000 + random.Next(0, 85_000)) / 10 * 10;
            string[] part = [.. lines.Where((_, k) => k % 16 == i % 16)];
            pushed += part.Aggregate(0UL, (a, l) => a + ulong.Parse(l[(l.LastIndexOf(' ') + 1)..]));
            using HttpResponseMessage r = await Api.IngestFolded(server.Client, $"rloh.cpu{{pod=p{i % 12}}}", string.Join('\n', part), from, from + 10);
            Assert.True(r.StatusCode == HttpStatusCode.OK, $"push {i}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync(cancel)}");
        }

        // Fixed ends (not now-24h: a range that moves with the clock would change the answers between rounds).
        long day = now - 86_400, hour = now - 3_600, until = now + 10;
        string[] queries =
        [
            $"/render?query=rloh.cpu&from={day}&until={until}&format=json",
            $"/render?query=rloh.cpu&from={hour}&until={until}&format=json",
            $"/render?query=rloh.cpu%7Bpod%3D%22p3%22%7D&from={day}&until={until}&format=json",
            $"/render?query=rloh.cpu&from={day}&until={until}&format=collapsed",
        ];
        // Warm-up renders read the answers as text and check them; measured renders must not allocate on the client
        // side either (this process is both): they drain each body into one reused buffer and compare its bytes
        // with the warm-up answer (nothing is pushed meanwhile, so the answers stay the same).
        var answers = new byte[queries.Length][];
        for (int round = 0; round < WarmUp; round++)
        {
            for (int k = 0; k < queries.Length; k++)
            {
                var (status, body) = await Api.Get(server.Client, queries[k]);
                Assert.True(status == HttpStatusCode.OK, $"{queries[k]}: {(int)status} {body}");
                answers[k] = System.Text.Encoding.UTF8.GetBytes(body);
            }
        }
        // The whole day holds every push: the flamebearer's total is the sum of all pushed values.
        Assert.Equal(pushed, JsonDocument.Parse(answers[0]).RootElement.GetProperty("flamebearer").GetProperty("numTicks").GetUInt64());
        var drained = new byte[answers.Max(a => a.Length) + 1];

        using var ticks = new AllocationTicks();
        await ticks.Mark();
        DateTime start = DateTime.UtcNow;
        for (int round = 0; round < Measured; round++)
        {
            for (int k = 0; k < queries.Length; k++)
            {
                using HttpResponseMessage r = await server.Client.GetAsync(queries[k], HttpCompletionOption.ResponseHeadersRead, cancel);
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                await using Stream body = await r.Content.ReadAsStreamAsync(cancel);
                int length = 0, read;
                while ((read = await body.ReadAsync(drained.AsMemory(length), cancel)) > 0) length += read;
                Assert.True(drained.AsSpan(0, length).SequenceEqual(answers[k]), $"{queries[k]}: the answer changed in round {round}");
            }
        }
        DateTime end = DateTime.UtcNow;
        await ticks.Mark();

        long large = ticks.LargeBytesBetween(start, end, out string types);
        // Before: ≥ 200 KB per day render for the piece set, plus the response buffer's 128 KB+ growth: ≥ 5 MB here. The
        // bound leaves room for one miss of the truncated sum's shared pool (one 512 KiB array: it held 4 per size and a
        // clean-clone CI run once met one, 524,336 bytes), not for anything per render.
        Assert.True(large < 1 << 20, $"{large} bytes allocated on the Large Object Heap in {Measured * queries.Length} renders after warm-up ({types})");
    }
}
