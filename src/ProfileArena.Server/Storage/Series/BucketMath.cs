namespace ProfileArena.Server.Storage;

/// <summary>
/// Time arithmetic of buckets and levels: level 0 buckets are 10 s, level k buckets 10·10^k s, each
/// aligned to a multiple of its size (pyroscope's segment tree: resolution 10 s, multiplier 10).
/// </summary>
public static class BucketMath
{
    /// <summary>Seconds of a level-0 bucket.</summary>
    public const long Resolution = 10;

    /// <summary>Most levels supported (10^13 s covers any unix time).</summary>
    public const int MaxLevels = 12;

    private static readonly long[] Sizes = BuildSizes();

    private static long[] BuildSizes()
    {
        var sizes = new long[MaxLevels];
        long s = Resolution;
        for (int i = 0; i < MaxLevels; i++, s *= 10) sizes[i] = s;
        return sizes;
    }

    /// <summary>Seconds covered by one bucket of <paramref name="level"/>.</summary>
    public static long Size(int level) => Sizes[level];

    /// <summary>Start of the level-<paramref name="level"/> bucket holding <paramref name="seconds"/> (floor, negatives included).</summary>
    public static long Floor(long seconds, int level)
    {
        long size = Sizes[level];
        long q = seconds / size;
        if (seconds % size != 0 && seconds < 0) q--;
        return q * size;
    }

    /// <summary>Latest time storage accepts or queries, unix seconds (year 2286): it keeps the number of
    /// coarse buckets a query can span bounded, and catches milliseconds sent as seconds.</summary>
    public const long MaxTime = 10_000_000_000;

    /// <summary>pyroscope's normalisation of a query range: from floored to 10 s, until rounded up to
    /// 10 s; an empty range becomes the one 10 s bucket at from. Both are first clamped to [0, <see cref="MaxTime"/>].</summary>
    public static (long From, long Until) Normalize(long from, long until)
    {
        from = Math.Clamp(from, 0, MaxTime);
        until = Math.Clamp(until, 0, MaxTime);
        long f = Floor(from, 0);
        long u = Floor(until, 0);
        if (u < until) u += Resolution;
        if (u <= f) u = f + Resolution;
        return (f, u);
    }

    /// <summary>
    /// Covers the normalised range [from, until) with maximal aligned buckets of levels below
    /// <paramref name="levels"/>, left to right: at most 9 buckets per level on each side, so O(log range)
    /// pieces. <paramref name="firstRetained"/>(level) gives the start of the oldest bucket still kept at
    /// that level: a piece older than that is served by the smallest kept coarser bucket holding it
    /// (the range widens at its old end rather than losing data), or dropped when no level keeps it.
    /// </summary>
    public static List<(int Level, long Start)> Decompose(long from, long until, int levels, Func<int, long>? firstRetained = null)
    {
        var pieces = new List<(int, long)>();
        Decompose(from, until, levels, firstRetained, pieces);
        return pieces;
    }

    /// <summary><see cref="Decompose(long, long, int, Func{int, long}?)"/> appending to <paramref name="pieces"/>
    /// (a query plan decomposes every timeline step: one reused list instead of one per step).</summary>
    public static void Decompose(long from, long until, int levels, Func<int, long>? firstRetained, List<(int Level, long Start)> pieces)
    {
        int first = pieces.Count;
        long t = from;
        while (t < until)
        {
            int k = 0;
            while (k + 1 < levels && t % Sizes[k + 1] == 0 && t + Sizes[k + 1] <= until) k++;
            if (firstRetained != null && t < firstRetained(k))
            {
                // Expired at its own level: use the smallest coarser bucket still kept.
                int j = k + 1;
                while (j < levels && Floor(t, j) < firstRetained(j)) j++;
                if (j == levels)
                {
                    t += Sizes[k];
                    continue;
                }
                long start = Floor(t, j);
                if (pieces.Count == first || pieces[^1] != (j, start)) pieces.Add((j, start));
                t = start + Sizes[j];
                continue;
            }
            pieces.Add((k, t));
            t += Sizes[k];
        }
    }

    /// <summary>pyroscope's timeline step for a range: the largest level size below range/1024, at least 10 s.</summary>
    public static long DefaultStep(long from, long until)
    {
        long min = (until - from) / 1024;
        long step = Resolution;
        foreach (long d in Sizes)
        {
            if (d < min) step = d;
        }
        return step;
    }
}
