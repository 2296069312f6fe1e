using System.Globalization;

namespace ProfileArena.Workloads;

/// <summary>
/// Test only (<see cref="WorkloadEngine.ArenaLeakPerTree"/>, <see cref="WorkloadEngine.ArenaLeakPerNode"/>): an engine
/// that also keeps managed objects a careless design might keep — two per tree (a header and a name) or one per
/// node — so the verification tests can prove that the heap check catches such a leak. The trees are the inner
/// engine's, unchanged.
/// </summary>
internal sealed class LeakingWorkloadEngine(WorkloadEngine kind, IWorkloadEngine inner, bool perNode, int treeCapacity) : IWorkloadEngine
{
    private readonly List<object> _leak = new(perNode ? 0 : 2 * treeCapacity);

    public WorkloadEngine Kind => kind;
    public int TreeCount => inner.TreeCount;
    public long Nodes => inner.Nodes;
    public long NativeBytes => inner.NativeBytes;
    public ulong TotalsSum => inner.TotalsSum;

    public int AddTree() => Leak(inner.AddTree());

    public void Insert(int tree, ReadOnlySpan<byte> key, ulong value)
    {
        long before = inner.NodeCount(tree);
        inner.Insert(tree, key, value);
        if (perNode)
            LeakObjects(inner.NodeCount(tree) - before);
    }

    public int BuildTakeHome(ref SplitMix64 rng, int width, int depth) => Leak(inner.BuildTakeHome(ref rng, width, depth));

    public long NodeCount(int tree) => inner.NodeCount(tree);
    public ulong Total(int tree) => inner.Total(tree);
    public void Iterate(int tree, StackVisitor visitor) => inner.Iterate(tree, visitor);
    public (long Nodes, long NativeBytes) BuildAlone(ReadOnlySpan<byte> key, ulong value) => inner.BuildAlone(key, value);

    public void Dispose()
    {
        inner.Dispose();
        _leak.Clear();
    }

    private int Leak(int tree)
    {
        if (perNode)
        {
            LeakObjects(inner.NodeCount(tree));
        }
        else
        {
            _leak.Add(new byte[16]);                                  // a header object per tree...
            // ...and a name. Formatted in place (an interpolated string handler), not with int.ToString, whose strings
            // for small numbers the runtime caches: each would be one more live object, not the leak's.
            _leak.Add(string.Create(CultureInfo.InvariantCulture, $"tree {tree}"));
        }
        return tree;
    }

    private void LeakObjects(long count)
    {
        for (long i = 0; i < count; i++)
            _leak.Add(new object());
    }
}
