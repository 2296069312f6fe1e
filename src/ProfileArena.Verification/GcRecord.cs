namespace ProfileArena.Verification;

/// <summary>One garbage collection seen in the runtime's GC events.</summary>
public sealed class GcRecord
{
    /// <summary>The runtime's GC number (GCStart's Count, process-wide).</summary>
    public int Number { get; init; }
    public int Generation { get; init; }
    public string Reason { get; init; } = "";
    public string Type { get; init; } = "";
    /// <summary>GCStart time, milliseconds from the session start.</summary>
    public double StartMs { get; init; }
    /// <summary>GCEnd time, milliseconds from the session start; NaN if the end was not seen.</summary>
    public double EndMs { get; set; } = double.NaN;
    /// <summary>Execution-engine suspension this GC ran in: SuspendEE start → RestartEE end. A background GC
    /// runs in two or more short suspensions; this is their sum (its cost), see <see cref="LongestSuspensionMs"/>.</summary>
    public double PauseMs { get; set; }
    /// <summary>The longest single suspension charged to this GC: how long the process stood still at once.
    /// Equals <see cref="PauseMs"/> for a blocking GC.</summary>
    public double LongestSuspensionMs { get; set; }
    /// <summary>Suspensions charged to this GC (1 for a blocking GC, 2 or more for a background GC).</summary>
    public int Suspensions { get; set; }
    /// <summary>Of <see cref="PauseMs"/>, the time spent getting threads to stop (SuspendEE start → SuspendEE end):
    /// long when a thread runs long without reaching a safe point or the cores are busy with other work.</summary>
    public double SuspendingMs { get; set; }
    /// <summary>Of <see cref="PauseMs"/>, the time spent letting threads run again (RestartEE start → RestartEE end).</summary>
    public double RestartingMs { get; set; }
    /// <summary>Mark phases of a blocking GC, in order: the root kind (GCMarkWithType's type: 0 stacks, 1 finalization
    /// queue, 2 handles, 3 older generations through the card table, 4 sized refs, 5 overflow, 6 dependent handles,
    /// 7 new finalizable objects, 8 steal) and the milliseconds since the previous phase ended (the first from GCStart),
    /// with the bytes that phase promoted. Empty when the session did not see them.</summary>
    public List<(int Kind, double Ms, long Bytes)> MarkPhases { get; } = [];

    /// <summary>The mark phases as text, the three longest root kinds first ("mark 2.1 ms: stacks 1.2 ms 1.7 MB, older
    /// generations (cards) 0.5 ms 5.2 MB, …"), then the GC's work after marking (plan, sweep or compact: the rest of
    /// GCStart → GCEnd). Empty without mark events or an end.</summary>
    public string DescribeWork()
    {
        if (MarkPhases.Count == 0 || double.IsNaN(EndMs)) return "";
        string[] names = ["stacks", "finalization queue", "handles", "older generations (cards)", "sized refs", "overflow", "dependent handles", "new finalizable", "steal"];
        double marked = MarkPhases.Sum(p => p.Ms);
        var parts = MarkPhases.GroupBy(p => p.Kind).Select(g => (Kind: g.Key, Ms: g.Sum(p => p.Ms), Bytes: g.Sum(p => p.Bytes)))
            .OrderByDescending(p => p.Ms).Take(3)
            .Select(p => $"{(p.Kind >= 0 && p.Kind < names.Length ? names[p.Kind] : $"kind {p.Kind}")} {p.Ms:0.0} ms {p.Bytes / 1e6:0.0} MB");
        return $"mark {marked:0.0} ms: {string.Join(", ", parts)}; after marking {EndMs - StartMs - marked:0.0} ms";
    }
    /// <summary>Managed heap after the GC (GCHeapStats TotalHeapSize), 0 if not seen.</summary>
    public long HeapBytesAfter { get; set; }
    /// <summary>The induced GC of one of the observer's heap snapshots (not the workload's cost).</summary>
    public bool Snapshot { get; set; }
}

/// <summary>Totals over a set of GCs.</summary>
public sealed class GcTotals
{
    public int Count { get; init; }
    public int[] CountByGeneration { get; init; } = [0, 0, 0];
    public double TotalPauseMs { get; init; }
    /// <summary>Longest single suspension per generation (<see cref="GcRecord.LongestSuspensionMs"/>).</summary>
    public double[] MaxPauseMsByGeneration { get; init; } = [0, 0, 0];
    public double[] TotalPauseMsByGeneration { get; init; } = [0, 0, 0];

    public static GcTotals Of(IEnumerable<GcRecord> gcs)
    {
        int count = 0;
        int[] byGen = [0, 0, 0];
        double[] max = [0, 0, 0], sum = [0, 0, 0];
        double total = 0;
        foreach (GcRecord gc in gcs)
        {
            int g = Math.Clamp(gc.Generation, 0, 2);
            count++;
            byGen[g]++;
            sum[g] += gc.PauseMs;
            max[g] = Math.Max(max[g], gc.LongestSuspensionMs); // a pause is one stretch the process stood still
            total += gc.PauseMs;
        }
        return new GcTotals { Count = count, CountByGeneration = byGen, TotalPauseMs = total, MaxPauseMsByGeneration = max, TotalPauseMsByGeneration = sum };
    }
}
