using System.Text;
using System.Text.Json;
using ProfileArena.Formats;
using ProfileArena.Tests.Server;

namespace ProfileArena.Tests.Formats;

/// <summary>
/// A flamebearer export whose JSON is past the Large Object Heap threshold allocates nothing there once warm:
/// the server's 100 M-node load run traced its renders' large-object allocations to the JSON writer's buffer, which
/// held the whole document and doubled as it grew (3 ticks per render, and each brings the next background gen2
/// closer). Measured with the runtime's allocation ticks, like the server's LOH tests; the exports are checked
/// against the warm-up's bytes and parsed once.
/// </summary>
[Collection(nameof(ProcessGcFigures))]
public sealed class FlamebearerLargeObjectHeapTests
{
    private const int Width = 25, Depth = 40, WarmUp = 3, Measured = 8;

    [Fact]
    public async Task ExportingAFifthOfAMegabyteOfJsonAllocatesNothingOnTheLargeObjectHeap()
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        // 25 chains of 40 frames with long, distinct Go-like names: 1,000 nodes (the server renders at most 1,024), 25 per level (so the exporter's own
        // per-level lists and name index stay small), ≈ 0.2 MB of JSON with the day's timeline.
        var stack = new StringBuilder();
        for (int w = 0; w < Width; w++)
        {
            stack.Clear();
            for (int d = 0; d < Depth; d++)
            {
                if (d > 0) stack.Append(';');
                stack.Append("github.com/acme/observability/internal/pipeline/stage").Append(d).Append(".(*Worker").Append(w).Append(").processBatchWithRetries.func").Append(d * Width + w);
            }
            tree.Insert(Encoding.UTF8.GetBytes(stack.ToString()), (ulong)(w + 1));
        }
        var options = new FlamebearerOptions { MaxNodes = 8192, Name = "lohtest.cpu", WriteTimeline = true, Timeline = new FlamebearerTimeline(0, 10, [.. Enumerable.Range(0, 8640).Select(i => (long)i)]) };

        byte[] expected = [];
        for (int i = 0; i < WarmUp; i++)
        {
            using var warm = new MemoryStream();
            FlamebearerFormat.Export(tree, warm, options);
            expected = warm.ToArray();
        }
        Assert.True(expected.Length > 128 << 10, $"the document is {expected.Length} bytes: too small to show anything");
        using (JsonDocument doc = JsonDocument.Parse(expected))
        {
            JsonElement flamebearer = doc.RootElement.GetProperty("flamebearer");
            Assert.Equal(Width * Depth + 1, flamebearer.GetProperty("names").GetArrayLength()); // every node's name, and the root's
            Assert.Equal((ulong)(Width * (Width + 1) / 2), flamebearer.GetProperty("numTicks").GetUInt64());
            Assert.Equal(8640, doc.RootElement.GetProperty("timeline").GetProperty("samples").GetArrayLength());
        }
        var buffer = new byte[expected.Length + 1]; // a fixed stream: the output itself allocates nothing

        using var ticks = new AllocationTicks();
        await ticks.Mark();
        // The exporter keeps its builder per thread, and the await may have resumed on another thread than the
        // warm-up's: warm this one too (no await from here to the end of the measured exports).
        FlamebearerFormat.Export(tree, Stream.Null, options);
        DateTime start = DateTime.UtcNow;
        for (int i = 0; i < Measured; i++)
        {
            using var output = new MemoryStream(buffer, writable: true);
            FlamebearerFormat.Export(tree, output, options);
            Assert.True(buffer.AsSpan(0, (int)output.Position).SequenceEqual(expected), $"export {i} differs from the warm-up's");
        }
        DateTime end = DateTime.UtcNow;
        await ticks.Mark();

        long large = ticks.LargeBytesBetween(start, end, out string types);
        // Before: the writer's buffer doubled to 256 KiB at every export (≥ 384 KiB of ticks each, ≥ 3 MiB here).
        Assert.True(large < 128 << 10, $"{large} bytes allocated on the Large Object Heap in {Measured} exports after warm-up ({types})");
    }

    /// <summary>A warm export allocates almost nothing at all, and reusing its builder changes no byte: the server
    /// answers every render with one, and its level lists, name table, name strings and JSON writer were most of what
    /// the server allocated under load (≈ 60 % of 10 GB in a 100 M-node run; perf/README, "Ninth session"). Between
    /// the measured exports of one tree come a diff export and an export of another tree on the same thread, whose
    /// leftovers must not reach the next answer.</summary>
    [Fact]
    public void AWarmExportAllocatesAlmostNothingAndReuseChangesNoByte()
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree(), other = store.CreateTree();
        var stack = new StringBuilder();
        for (int w = 0; w < Width; w++)
        {
            stack.Clear();
            for (int d = 0; d < Depth; d++)
            {
                if (d > 0) stack.Append(';');
                stack.Append("pkg/stage").Append(d).Append(".worker").Append(w).Append("_ü");
            }
            tree.Insert(Encoding.UTF8.GetBytes(stack.ToString()), (ulong)(w + 1));
            other.Insert(Encoding.UTF8.GetBytes("other;" + stack.ToString()[..(stack.Length / 2)]), (ulong)(2 * w + 1));
        }
        var options = new FlamebearerOptions { MaxNodes = 8192, Name = "alloc.cpu" };
        byte[] Export(ProfileTree t)
        {
            using var m = new MemoryStream();
            FlamebearerFormat.Export(t, m, options);
            return m.ToArray();
        }
        byte[] expected = Export(tree);
        byte[] otherExpected = Export(other);
        for (int i = 0; i < WarmUp; i++) Assert.Equal(expected, Export(tree));
        var buffer = new byte[expected.Length + 1];
        long total = 0;
        for (int i = 0; i < Measured; i++)
        {
            using (var diff = new MemoryStream()) FlamebearerFormat.ExportDiff(tree, other, diff, options);
            Assert.Equal(otherExpected, Export(other));
            using var output = new MemoryStream(buffer, writable: true);
            long before = GC.GetAllocatedBytesForCurrentThread();
            FlamebearerFormat.Export(tree, output, options);
            total += GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(buffer.AsSpan(0, (int)output.Position).SequenceEqual(expected), $"export {i} differs from the first");
        }
        // Before: 332,808 bytes per export of these 1,001 nodes (lists doubling, 1,001 strings, the name table, the writer).
        Assert.True(total / Measured < 4 << 10, $"{total / Measured} bytes allocated per warm export");
    }
}
