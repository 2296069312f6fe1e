using ProfileArena.Formats;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Formats;

/// <summary>Managed allocation of a folded import does not grow with the number of lines.</summary>
public class ImportAllocationTests
{
    private static long Allocated(byte[] data, int times)
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        long before = GC.GetAllocatedBytesForCurrentThread();
        FoldedFormat.Import(new ReplayStream(data, times), tree);
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void AllocationIsIndependentOfTheLineCount()
    {
        byte[] data = File.ReadAllBytes(Path.Combine(SharedData.TestData, "collapsed/inferno/flamegraph/unsorted-input/perf-vertx-stacks-01-collapsed-all-unsorted.txt"));
        Allocated(data, 2); // warm up
        long small = Allocated(data, 5), large = Allocated(data, 50); // 1,000 vs 10,000 lines
        Assert.True(large - small < 9_000, $"5 replays: {small} B, 50 replays: {large} B; 9,000 more lines cost {large - small} B");
    }
}
