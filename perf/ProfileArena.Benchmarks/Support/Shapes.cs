namespace ProfileArena.Benchmarks.Support;

/// <summary>
/// Workload sizes. The full suite uses the sizes of the issue; <c>--smoke</c> flips <see cref="Smoke"/>
/// before BenchmarkDotNet enumerates parameters (smoke runs in-process, so the flag is seen everywhere).
/// </summary>
public static class Shapes
{
    public static bool Smoke { get; set; }

    /// <summary>Take-home shapes "width x depth": step 10's tree (100,002 nodes) and a small one.</summary>
    public static IEnumerable<string> TakeHome => Smoke ? ["20x10"] : ["200x500", "50x100"];

    public static (int Width, int Depth) Parse(string shape)
    {
        int x = shape.IndexOf('x');
        return (int.Parse(shape.AsSpan(0, x)), int.Parse(shape.AsSpan(x + 1)));
    }

    /// <summary>Real-shape insert: trees per store and replays of every stack per tree.</summary>
    public static int RealTrees => Smoke ? 2 : 8;
    public static int RealReplays => Smoke ? 1 : 4;

    /// <summary>Iterate: the take-home tree (200 × 500 = 100,002 nodes).</summary>
    public static string IterateTakeHome => Smoke ? "20x10" : "200x500";

    /// <summary>Names per symbol-table batch.</summary>
    public static int SymbolBatch => Smoke ? 256 : 65_536;
}
