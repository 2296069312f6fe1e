using ProfileArena.Workloads;

namespace ProfileArena.Verification;

/// <summary>What one tree is: the take-home generator's tree, or the single <c>foo;bar;baz</c> = 100 insert.</summary>
public enum WorkloadShape
{
    TakeHome,
    FooBarBaz,
}

/// <summary>One observed child: an engine (<see cref="WorkloadEngine"/>, named on the child's command line by
/// <see cref="WorkloadEngines.Name"/>), a number of trees of width × depth, and the tree counts at
/// which a heap snapshot is taken (0, the empty store, is always one; so is <see cref="Trees"/>).</summary>
public sealed record WorkloadSpec(WorkloadEngine Engine, int Trees, int Width, int Depth, IReadOnlyList<int> Checkpoints,
    WorkloadShape Shape = WorkloadShape.TakeHome)
{
    /// <summary>The checkpoints the child will stop at: sorted, distinct, 0 and <see cref="Trees"/> included.</summary>
    public IReadOnlyList<int> EffectiveCheckpoints =>
        [.. new SortedSet<int>(Checkpoints.Where(c => c <= Trees)) { 0, Trees }];

    /// <summary>Throws <see cref="ArgumentException"/> for sizes that make no sense.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Engine))
            throw new ArgumentException($"unknown engine {Engine}");
        if (Trees <= 0 || Width <= 0 || Depth <= 0)
            throw new ArgumentException($"trees, width and depth must be positive (got {Trees}, {Width}, {Depth})");
        if ((long)Width * Depth > int.MaxValue)
            throw new ArgumentException($"width × depth = {(long)Width * Depth} nodes per tree is more than a tree can hold");
        foreach (int c in Checkpoints)
        {
            if (c < 0 || c > Trees)
                throw new ArgumentException($"checkpoint {c} is not a tree count in 0..{Trees}");
        }
    }

    internal IEnumerable<string> ChildArguments()
    {
        yield return "--engine";
        yield return WorkloadEngines.Name(Engine);
        yield return "--shape";
        yield return Shape == WorkloadShape.FooBarBaz ? "foobarbaz" : "takehome";
        yield return "--trees";
        yield return Str(Trees);
        yield return "--width";
        yield return Str(Width);
        yield return "--depth";
        yield return Str(Depth);
        yield return "--checkpoints";
        yield return string.Join(',', EffectiveCheckpoints.Select(Str));

        static string Str(int v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}
