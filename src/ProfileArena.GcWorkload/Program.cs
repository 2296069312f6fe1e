using System.Globalization;
using ProfileArena.Baseline;
using ProfileArena.Workloads;

namespace ProfileArena.GcWorkload;

/// <summary>
/// The observed child of <c>verify-gc</c>. It builds trees for one engine and stops at each checkpoint
/// (a number of trees built) until the observer, which reads its stdout, answers on stdin.
/// </summary>
/// <remarks>
/// Protocol, one line each (stdout → observer): <c>ready PID NODES</c> once after the warm-up (answer
/// <c>next</c>); <c>progress TREES NODES</c> after every tree;
/// <c>checkpoint TREES NODES NATIVE_BYTES TOTALS_SUM</c>, then the child blocks reading stdin until
/// <c>next</c> (anything else, or end of input, ends the child with exit code 3: an observer that
/// dies takes its child down at the next checkpoint); <c>done</c> at the end (exit 0). Usage errors
/// exit 2, failures 1; messages go to stderr.
/// Arguments: <c>--engine E --shape takehome|foobarbaz --trees N --width W --depth D --checkpoints 0,1,10</c>.
/// Engines <c>arena-leak-per-tree</c> and <c>arena-leak-per-node</c> keep managed objects the arena
/// must not need; they exist only so the verification tests can prove they catch such a leak.
/// </remarks>
internal static class Program
{
    private static int Main(string[] args)
    {
        WorkloadArgs options;
        try
        {
            options = WorkloadArgs.Parse(args);
        }
        catch (FormatException e)
        {
            Console.Error.WriteLine($"gc-workload: {e.Message}");
            return 2;
        }

        Console.Out.Flush();
        var engine = IWorkloadEngine.Create(options.Engine, options.Trees);
        // Warm up twice with a pause between, so that tiered compilation has promoted the hot methods
        // (its call counting starts after a 100 ms delay and runs on a background worker) before the
        // empty-store snapshot: what the runtime creates once per process for JIT tiering is not a
        // cost of the store and must not be counted as one.
        engine.WarmUp(options.Depth);
        Thread.Sleep(300);
        engine.WarmUp(options.Depth);
        Thread.Sleep(300);
        // One round trip of the protocol before the empty-store snapshot: the first completed read of
        // stdin and the first formatted progress line create console and runtime objects once per process.
        Say($"ready {Environment.ProcessId} {engine.Nodes}");
        if (Console.In.ReadLine() != "next")
            return 3;

        var rng = new SplitMix64(SplitMix64.TakeHomeSeed);
        int built = 0;
        foreach (int checkpoint in options.Checkpoints)
        {
            while (built < checkpoint)
            {
                if (options.Shape == "foobarbaz")
                    engine.BuildFooBarBaz();
                else
                    engine.BuildTakeHome(ref rng, options.Width, options.Depth);
                built++;
                Say($"progress {built} {engine.Nodes}");
            }
            Say($"checkpoint {built} {engine.Nodes} {engine.NativeBytes} {engine.TotalsSum}");
            string? answer = Console.In.ReadLine();
            if (answer != "next")
                return 3;
        }
        GC.KeepAlive(engine);
        Say("done");
        return 0;
    }

    private static void Say(string line)
    {
        Console.Out.WriteLine(line);
        Console.Out.Flush();
    }
}

/// <summary>
/// The child's arguments, parsed by hand on purpose: unlike the CLI (System.CommandLine), this process is the
/// one whose managed heap verify-gc measures, so it loads no command-line package whose objects would show
/// up in every heap snapshot. Its only caller is VerificationRunner, which always passes well-formed options.
/// </summary>
internal sealed class WorkloadArgs
{
    public string Engine { get; private set; } = "arena";
    public string Shape { get; private set; } = "takehome";
    public int Trees { get; private set; } = 1;
    public int Width { get; private set; } = 200;
    public int Depth { get; private set; } = 500;
    public int[] Checkpoints { get; private set; } = [];

    public static WorkloadArgs Parse(string[] args)
    {
        var result = new WorkloadArgs();
        string? checkpoints = null;
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            if (i + 1 >= args.Length)
                throw new FormatException($"{name} needs a value");
            string value = args[++i];
            switch (name)
            {
                case "--engine": result.Engine = value; break;
                case "--shape": result.Shape = value; break;
                case "--trees": result.Trees = Positive(name, value); break;
                case "--width": result.Width = Positive(name, value); break;
                case "--depth": result.Depth = Positive(name, value); break;
                case "--checkpoints": checkpoints = value; break;
                default: throw new FormatException($"unknown option '{name}'");
            }
        }
        if (result.Engine is not ("arena" or "baseline" or "arena-leak-per-tree" or "arena-leak-per-node"))
            throw new FormatException($"unknown engine '{result.Engine}'");
        if (result.Shape is not ("takehome" or "foobarbaz"))
            throw new FormatException($"unknown shape '{result.Shape}'");
        var points = new SortedSet<int> { 0, result.Trees };
        if (checkpoints is not null)
        {
            foreach (string part in checkpoints.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int point) || point > result.Trees)
                    throw new FormatException($"checkpoint '{part}' is not a tree count in 0..{result.Trees}");
                points.Add(point);
            }
        }
        result.Checkpoints = [.. points];
        return result;
    }

    private static int Positive(string name, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0
            ? n
            : throw new FormatException($"{name} needs a positive integer, got '{value}'");
}

/// <summary>One engine's trees, all kept alive until the process ends.</summary>
internal interface IWorkloadEngine
{
    long Nodes { get; }
    long NativeBytes { get; }
    ulong TotalsSum { get; }

    /// <summary>Runs every code path once on throwaway data, so JIT, static constructors and the
    /// generator's key buffer exist before the empty-store snapshot and are not counted as the store's cost.</summary>
    /// <remarks>The warm-up tree has the real depth: deep keys take code paths (pooled buffers, table
    /// growth, and the runtime objects those create once per process) that shallow ones never reach.</remarks>
    void WarmUp(int depth);

    void BuildTakeHome(ref SplitMix64 rng, int width, int depth);

    void BuildFooBarBaz();

    public static IWorkloadEngine Create(string name, int trees) => name switch
    {
        "baseline" => new BaselineWorkload(trees),
        "arena" => new ArenaWorkload(trees, ArenaLeak.None),
        "arena-leak-per-tree" => new ArenaWorkload(trees, ArenaLeak.PerTree),
        "arena-leak-per-node" => new ArenaWorkload(trees, ArenaLeak.PerNode),
        _ => throw new FormatException($"unknown engine '{name}'"),
    };
}

internal enum ArenaLeak { None, PerTree, PerNode }

internal sealed class ArenaWorkload(int trees, ArenaLeak leak) : IWorkloadEngine
{
    // One store for all trees (symbols shared per store), created before the empty-store checkpoint.
    private readonly TreeStore _store = new();
    private readonly List<object> _leak = leak == ArenaLeak.None ? [] : new(trees);
    private ulong _totals;

    public long Nodes => _store.NodeCount;
    public long NativeBytes => _store.NativeBytes;
    public ulong TotalsSum => _totals;

    public void WarmUp(int depth)
    {
        using var store = new TreeStore();
        var rng = new SplitMix64(1);
        var sink = new Sink(store.CreateTree());
        TakeHome.GenerateTree(ref rng, 20, depth, ref sink);
        store.CreateTree().Insert("foo;bar;baz"u8, 100);
    }

    public void BuildTakeHome(ref SplitMix64 rng, int width, int depth)
    {
        var sink = new Sink(_store.CreateTree());
        TakeHome.GenerateTree(ref rng, width, depth, ref sink);
        Built(sink.Tree);
    }

    public void BuildFooBarBaz()
    {
        ProfileTree tree = _store.CreateTree();
        tree.Insert("foo;bar;baz"u8, 100);
        Built(tree);
    }

    private void Built(ProfileTree tree)
    {
        _totals += tree.Total;
        switch (leak)
        {
            case ArenaLeak.PerTree:
                _leak.Add(new byte[16]); // what a careless design might keep per tree: a header object...
                _leak.Add(tree.Id.ToString(CultureInfo.InvariantCulture)); // ...and a name
                break;
            case ArenaLeak.PerNode:
                for (long i = 0; i < tree.NodeCount; i++)
                    _leak.Add(new object());
                break;
        }
    }

    private readonly struct Sink(ProfileTree tree) : IKeySink
    {
        public ProfileTree Tree { get; } = tree;

        public void Insert(ReadOnlySpan<byte> key, ulong value) => Tree.Insert(key, value);
    }
}

internal sealed class BaselineWorkload(int trees) : IWorkloadEngine
{
    // Like the Go program's slice of trees: everything built stays reachable. Sized up front so the
    // list's array does not change between checkpoints.
    private readonly List<BaselineTree> _trees = new(trees);
    private long _nodes;
    private ulong _totals;

    public long Nodes => _nodes;
    public long NativeBytes => 0;
    public ulong TotalsSum => _totals;

    public void WarmUp(int depth)
    {
        var rng = new SplitMix64(1);
        var sink = new Sink(new BaselineTree());
        TakeHome.GenerateTree(ref rng, 20, depth, ref sink);
        new BaselineTree().Insert("foo;bar;baz"u8, 100);
    }

    public void BuildTakeHome(ref SplitMix64 rng, int width, int depth)
    {
        var sink = new Sink(new BaselineTree());
        TakeHome.GenerateTree(ref rng, width, depth, ref sink);
        Built(sink.Tree);
    }

    public void BuildFooBarBaz()
    {
        var tree = new BaselineTree();
        tree.Insert("foo;bar;baz"u8, 100);
        Built(tree);
    }

    private void Built(BaselineTree tree)
    {
        _trees.Add(tree);
        _nodes += tree.NodeCount;
        _totals += tree.Total;
    }

    private readonly struct Sink(BaselineTree tree) : IKeySink
    {
        public BaselineTree Tree { get; } = tree;

        public void Insert(ReadOnlySpan<byte> key, ulong value) => Tree.Insert(key, value);
    }
}
