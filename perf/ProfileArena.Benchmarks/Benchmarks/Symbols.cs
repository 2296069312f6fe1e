using BenchmarkDotNet.Attributes;
using ProfileArena.Benchmarks.Support;

namespace ProfileArena.Benchmarks.Benchmarks;

internal static class SymbolNames
{
    /// <summary>Take-home names (80 hex characters, all distinct) or the distinct frames of the real data,
    /// extended with numbered copies up to <paramref name="count"/> so both sets have the same size.</summary>
    public static NameSet Get(string set, int count)
    {
        if (set == "TakeHome") return NameSet.TakeHome(0x5EED, count);
        NameSet frames = CollapsedStacks.All.DistinctFrames();
        var names = new List<byte[]>(count);
        for (int copy = 0; names.Count < count; copy++)
            for (int i = 0; i < frames.Count && names.Count < count; i++)
                names.Add(copy == 0 ? frames[i].ToArray() : [.. frames[i], .. "`"u8, .. System.Text.Encoding.ASCII.GetBytes(copy.ToString())]);
        return NameSet.From(names);
    }
}

/// <summary>
/// Symbol table lookups through the internal hooks, one op = one name: Intern of a name already
/// interned (the hit path every insert of a known frame takes), Find of a present name, and Find of an
/// absent one (the miss path: a control-byte probe that should touch no entry). The store holds
/// <see cref="Names"/> names; ops cycle through them in order.
/// </summary>
[MemoryDiagnoser]
public class SymbolLookup
{
    public const int Names = 65_536;
    private const int Batch = 4096;

    [Params("TakeHome", "Real")]
    public string Set { get; set; } = "";

    private TreeStore? _store;
    private NameSet _present = null!, _absent = null!;
    private int _next;

    [GlobalSetup]
    public void GlobalSetup()
    {
        _present = SymbolNames.Get(Set, Names);
        _absent = _present.WithSuffix("~absent"u8);
        _store = new TreeStore();
        for (int i = 0; i < _present.Count; i++) _store.InternSymbol(_present[i]);
        if (_store.SymbolCount != _present.Count + 1) throw new InvalidOperationException("names are not distinct");
    }

    [GlobalCleanup]
    public void GlobalCleanup() => _store?.Dispose();

    [Benchmark(OperationsPerInvoke = Batch, Description = "Intern (hit)")]
    public long InternHit() => Cycle<Intern>(_present);

    [Benchmark(OperationsPerInvoke = Batch, Description = "Find (hit)")]
    public long FindHit() => Cycle<Find>(_present);

    [Benchmark(OperationsPerInvoke = Batch, Description = "Find (miss)")]
    public long FindMiss() => Cycle<Find>(_absent);

    private interface ILookup { static abstract long Run(TreeStore store, ReadOnlySpan<byte> name); }
    private readonly struct Intern : ILookup { public static long Run(TreeStore store, ReadOnlySpan<byte> name) => store.InternSymbol(name); }
    private readonly struct Find : ILookup { public static long Run(TreeStore store, ReadOnlySpan<byte> name) => store.FindSymbol(name); }

    /// <summary>One batch of lookups cycling through <paramref name="names"/>; specialised per op, no delegate.</summary>
    private long Cycle<TLookup>(NameSet names) where TLookup : struct, ILookup
    {
        TreeStore store = _store!;
        long sum = 0;
        int next = _next;
        for (int i = 0; i < Batch; i++)
        {
            sum += TLookup.Run(store, names[next]);
            if (++next == names.Count) next = 0;
        }
        _next = next;
        return sum;
    }
}

/// <summary>
/// The intern miss path: one op = one new name interned into a fresh store (hash, probe, copy the
/// bytes into the arena, append an entry, grow the table as it fills). A fresh store per iteration.
/// </summary>
[MemoryDiagnoser]
[InvocationCount(1, unrollFactor: 1)]
public class SymbolInternNew
{
    private const int Batch = SymbolLookup.Names;

    [Params("TakeHome", "Real")]
    public string Set { get; set; } = "";

    private TreeStore? _store;
    private NameSet _names = null!;

    [GlobalSetup]
    public void GlobalSetup() => _names = SymbolNames.Get(Set, Batch);

    [IterationSetup]
    public void Setup() => _store = new TreeStore();

    [IterationCleanup]
    public void Cleanup()
    {
        if (_store!.SymbolCount != Batch + 1) throw new InvalidOperationException("names are not distinct");
        _store.Dispose();
    }

    [Benchmark(OperationsPerInvoke = Batch, Description = "Intern (miss, new name)")]
    public long InternNew()
    {
        TreeStore store = _store!;
        NameSet names = _names;
        long sum = 0;
        for (int i = 0; i < names.Count; i++)
            sum += store.InternSymbol(names[i]);
        return sum;
    }
}
