using ProfileArena.Verification;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Verification;

/// <summary>
/// The claim, measured from outside the process at CI scale: a workload child per engine, EventPipe heap
/// snapshots at 0 (empty store), 1 and 20 trees of the take-home shape 20 × 50 (1,002 nodes per tree).
/// </summary>
[Trait("Category", "Slow")] // each test spawns workload children and takes EventPipe heap snapshots
public sealed class StoreCostVerificationTests
{
    private const int Trees = 20, Width = 20, Depth = 50;

    private static EngineResult Observe(WorkloadEngine engine) =>
        new VerificationRunner().Run(new WorkloadSpec(engine, Trees, Width, Depth, [1, Trees]), TestContext.Current.CancellationToken);

    [Fact]
    public void ArenaCostsTheSameObjectsForOneTreeAndForTwenty()
    {
        EngineResult arena = Observe(WorkloadEngine.Arena);

        Assert.Equal([0, 1, Trees], arena.Checkpoints.Select(c => c.Trees));
        Assert.Equal(Trees * (2L + Width * Depth), arena.Checkpoints[^1].Nodes);
        Assert.All(arena.Checkpoints, c => Assert.Equal(0, c.SnapshotEventsLost));
        Assert.Null(StoreCostCheck.FlatViolation(arena));
        // The snapshot really saw a heap: thousands of runtime objects are live in any process.
        Assert.True(arena.Checkpoints[^1].LiveObjects > 1000);
    }

    [Fact]
    public void BaselineGrowsAtLeastLinearlyWithNodes()
    {
        EngineResult baseline = Observe(WorkloadEngine.Baseline);

        CheckpointResult one = baseline.Checkpoints.Single(c => c.Trees == 1);
        CheckpointResult twenty = baseline.Checkpoints.Single(c => c.Trees == Trees);
        // At least one object per node (in fact ~4: node, child list, its array, name bytes)...
        Assert.True(one.AttributableObjects >= one.Nodes, $"{one.AttributableObjects} objects for {one.Nodes} nodes");
        Assert.True(twenty.AttributableObjects >= twenty.Nodes, $"{twenty.AttributableObjects} objects for {twenty.Nodes} nodes");
        // ...and 20× the nodes cost at least 20× the objects (5% slack for the runtime's own noise).
        double nodeRatio = (double)twenty.Nodes / one.Nodes;
        double objectRatio = (double)twenty.AttributableObjects / one.AttributableObjects;
        Assert.True(objectRatio >= 0.95 * nodeRatio, $"objects grew {objectRatio:0.00}×, nodes {nodeRatio:0.00}×");
        Assert.NotNull(StoreCostCheck.FlatViolation(baseline));
        Assert.Contains(twenty.TopTypes, t => t.Type == "ProfileArena.Baseline.BaselineNode" && t.CountDelta == twenty.Nodes);
    }

    [Theory]
    [InlineData(WorkloadEngine.ArenaLeakPerTree)]
    [InlineData(WorkloadEngine.ArenaLeakPerNode)]
    public void TheCheckCatchesAnArenaThatKeepsObjectsPerTreeOrPerNode(WorkloadEngine leaky)
    {
        EngineResult result = Observe(leaky);

        string? violation = StoreCostCheck.FlatViolation(result);
        Assert.NotNull(violation);
        long expectedLeak = leaky == WorkloadEngine.ArenaLeakPerTree ? 2 * Trees : Trees * (2L + Width * Depth);
        Assert.InRange(result.Checkpoints[^1].AttributableObjects, expectedLeak - StoreCostCheck.MaxObjectsPerStore, expectedLeak + StoreCostCheck.MaxObjectsPerStore);
    }

    [Fact]
    public void NonsensicalSizesAreRejectedBeforeAnyChildStarts()
    {
        var runner = new VerificationRunner();
        Assert.Throws<ArgumentException>(() => runner.Run(new WorkloadSpec(WorkloadEngine.Arena, 0, 1, 1, []), TestContext.Current.CancellationToken));
        Assert.Throws<ArgumentException>(() => runner.Run(new WorkloadSpec(WorkloadEngine.Arena, 2, 1, 1, [3]), TestContext.Current.CancellationToken));
        Assert.Throws<ArgumentException>(() => runner.Run(new WorkloadSpec((WorkloadEngine)42, 1, 1, 1, []), TestContext.Current.CancellationToken));
    }

    [Fact]
    public void AChildThatNeverConnectsIsAClearErrorNamingThePhase()
    {
        // Not an assembly: the host fails before any runtime starts, so nothing connects to the port.
        string bogus = Path.Combine(Path.GetTempPath(), $"not-an-assembly-{Guid.NewGuid():N}.dll");
        File.WriteAllText(bogus, "not a .NET assembly");
        try
        {
            var runner = new VerificationRunner { WorkloadPath = bogus, ConnectTimeout = TimeSpan.FromSeconds(20) };
            var error = Assert.Throws<VerificationException>(() =>
                runner.Run(new WorkloadSpec(WorkloadEngine.Arena, 1, 1, 1, []), TestContext.Current.CancellationToken));
            Assert.Equal("connect", error.Phase);
            Assert.Contains("before connecting", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(bogus);
        }
    }
}
