using System.Diagnostics;
using ProfileArena;

/// <summary>
/// <c>--sum K</c>: a render's last step, the sum of a query's cached entries cut to 1,024 nodes, two ways. The entry-shaped
/// tree of <c>--copy K</c> (every real collapsed file of ../shared/testdata under K prefixes) is dealt line by line into
/// 1, 3 and 8 source trees (a render sums 1–3 entries and a staging tree), and 40 overlapping ones (each every line of
/// the first four variants, values scaled: a render of one service sums a few entries, a staging tree and the series trees
/// of its settling pieces, every one of them the same program); each way is timed 15 times: the old path (a
/// fresh query store, <c>MergeFrom</c> of every source, <c>Truncate(1024)</c>) and <c>MergeTruncated(sources, 1024)</c>,
/// and, to show what the totals pass costs, <c>MergeTruncated(sources, 1)</c> (the same pass, a walk of one node).
/// Prints the least time of each (the machine is shared: the least is the code's cost) and checks both give one tree.
/// </summary>
internal static class TruncatedSumBench
{
    public static void Run(string collapsedDir, int variants)
    {
        var lines = new List<(string Stack, ulong Value)>();
        foreach (string file in Directory.GetFiles(collapsedDir, "*.txt", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            foreach (string line in File.ReadLines(file))
            {
                int space = line.LastIndexOf(' ');
                if (space <= 0 || !ulong.TryParse(line.AsSpan(space + 1), out ulong value)) continue;
                lines.Add((line[..space], value));
            }
        }
        // Dealt (each line into one source: 1, 3, 8 sources), then overlapping as a render's sources are (every entry
        // of one service holds the same program: 40 sources, each every line of the first few variants).
        foreach (var (count, overlapping) in new[] { (1, false), (3, false), (8, false), (40, true) })
        {
            using var sourceStore = new TreeStore();
            var sources = new ProfileTree[count];
            for (int s = 0; s < count; s++) sources[s] = sourceStore.CreateTree();
            long n = 0;
            if (overlapping)
            {
                for (int s = 0; s < count; s++)
                    for (int k = 0; k < Math.Min(variants, 4); k++)
                        foreach (var (stack, value) in lines) sources[s].Insert($"v{k};{stack}", value * (ulong)(1 + (n++ % 7)));
            }
            else
            {
                for (int k = 0; k < variants; k++)
                    foreach (var (stack, value) in lines) sources[n++ % count].Insert($"v{k};{stack}", value);
            }
            long nodes = sources.Sum(t => t.NodeCount);
            double merged = double.MaxValue, summed = double.MaxValue, totalsOnly = double.MaxValue;
            for (int round = 0; round < 15; round++)
            {
                var watch = Stopwatch.StartNew();
                using var oldStore = new TreeStore();
                ProfileTree viaMerge = oldStore.CreateTree();
                foreach (ProfileTree source in sources) viaMerge.MergeFrom(source);
                viaMerge.Truncate(1024);
                merged = Math.Min(merged, watch.Elapsed.TotalMilliseconds);

                using var newStore = new TreeStore();
                ProfileTree sum = newStore.CreateTree();
                watch.Restart();
                sum.MergeTruncated(sources, 1024);
                summed = Math.Min(summed, watch.Elapsed.TotalMilliseconds);
                if (round == 0 && (sum.NodeCount != viaMerge.NodeCount || sum.Total != viaMerge.Total))
                    throw new InvalidOperationException($"the truncated sum ({sum.NodeCount} nodes) differs from merge + truncate ({viaMerge.NodeCount})");

                ProfileTree one = newStore.CreateTree();
                watch.Restart();
                one.MergeTruncated(sources, 1);
                totalsOnly = Math.Min(totalsOnly, watch.Elapsed.TotalMilliseconds);
            }
            Console.WriteLine($"{count} source(s){(overlapping ? " overlapping" : "")}, {nodes:N0} nodes in all: merge + truncate to 1,024 {merged:0.00} ms; MergeTruncated 1,024 {summed:0.00} ms; MergeTruncated 1 (the totals pass, a walk of one node) {totalsOnly:0.00} ms (least of 15)");
        }
    }
}
