namespace ProfileArena.Verification;

/// <summary>The claim under test: the managed objects a store costs do not grow with trees or nodes.</summary>
public static class StoreCostCheck
{
    /// <summary>Most managed objects one store may add to the heap, at any size (issue 4: ≤ 16 per store).</summary>
    public const int MaxObjectsPerStore = 16;

    /// <summary>
    /// Null if every checkpoint's attributable live objects are within ±<paramref name="maxPerStore"/>
    /// of the empty store and within <paramref name="maxPerStore"/> of each other (flat in trees and
    /// nodes); otherwise a message saying which checkpoint breaks it.
    /// </summary>
    public static string? FlatViolation(EngineResult result, int maxPerStore = MaxObjectsPerStore)
    {
        ArgumentNullException.ThrowIfNull(result);
        List<CheckpointResult> points = result.Checkpoints.Where(c => c.Trees > 0).ToList();
        if (points.Count == 0)
            return "no checkpoint with trees";
        foreach (CheckpointResult c in points)
        {
            if (Math.Abs(c.AttributableObjects) > maxPerStore)
                return $"{result.Engine}: {c.AttributableObjects} live objects attributable at {c.Trees} trees ({c.Nodes} nodes), more than {maxPerStore}";
        }
        long min = points.Min(c => c.AttributableObjects), max = points.Max(c => c.AttributableObjects);
        if (max - min > maxPerStore)
            return $"{result.Engine}: attributable live objects range from {min} to {max} across checkpoints, more than {maxPerStore} apart";
        return null;
    }
}
