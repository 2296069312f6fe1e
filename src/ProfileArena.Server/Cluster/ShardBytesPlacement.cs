using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace ProfileArena.Server.Cluster;

/// <summary>
/// Placement of shard grains by storage bytes (README "Running a cluster"): a new activation goes to the compatible
/// silo holding the fewest bytes counted against the native budget. Orleans' own strategies weigh activation counts,
/// CPU and managed memory; a shard's trees live in native memory, so a silo holding large shards looks idle to them.
/// </summary>
[GenerateSerializer, Immutable, SuppressReferenceTracking]
internal sealed class ShardBytesPlacement : PlacementStrategy
{
    internal static readonly ShardBytesPlacement Singleton = new();
}

/// <summary>Marks a grain class as placed by <see cref="ShardBytesPlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
internal sealed class ShardBytesPlacementAttribute() : PlacementAttribute(ShardBytesPlacement.Singleton);

/// <summary>
/// Picks the silo of a new shard activation from <see cref="ShardLoadTable"/> (this silo's view of every silo's bytes).
/// <para>Order: an explicit placement hint (<see cref="IPlacementDirector.PlacementHintKey"/>, set by a migration —
/// the rebalancer's or a test's — and honoured by every Orleans director) when that silo is compatible; else the
/// compatible silo with the fewest bytes among those with a fresh figure; else, when none has one (this silo's own
/// figure is always fresh, so only when this silo is not compatible and the others do not answer), a random
/// compatible silo, Orleans' default placement.</para>
/// <para>Why stale or missing figures are safe: placement only chooses where a shard runs, never whether its data is
/// right. Every silo can serve every shard (it opens it from the shared medium, which fences out any earlier writer),
/// and Orleans' directory keeps one activation per shard whoever placed it. So a figure that is old, or a silo left out
/// for lack of one, can only cost balance: a shard lands on a silo that is fuller than the table says. That is bounded
/// (figures older than three refresh periods are not used at all; placements since a figure count against it) and
/// undone by the rebalancer, which moves shards only on fresh figures from every silo.</para>
/// </summary>
internal sealed class ShardBytesPlacementDirector(ShardLoadTable table) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        SiloAddress[] compatible = context.GetCompatibleSilos(target);
        if (IPlacementDirector.GetPlacementHint(target.RequestContextData, compatible) is { } hint) return Task.FromResult(hint);
        if (compatible.Length == 0) throw new SiloUnavailableException($"Cannot place shard grain '{target.GrainIdentity}': no compatible silo is active");
        SiloAddress pick = table.LeastLoaded(compatible) ?? compatible[Random.Shared.Next(compatible.Length)];
        table.NotePlaced(pick);
        return Task.FromResult(pick);
    }
}
