using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ProfileArena.Native;

/// <summary>One visited node of an <see cref="IterationPlan"/>: 32 bytes, in visit order.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PlanEntry
{
    public byte* Name;      // into the name arena (never moves while the store lives)
    public int NameLength;
    public int Depth;       // 1 for children of the root
    public ulong Self;
    public ulong Total;
}

/// <summary>
/// A tree's visit order, cached: every node but the root in depth-first pre-order with siblings in
/// ordinal byte order, each with its name, depth, self and total. Building it is the expensive
/// part of Iterate (totals pass, gathering and sorting children, resolving names); replaying it is
/// a sequential scan. It is rebuilt when the tree's <see cref="TreeLock.Version"/> has moved, i.e.
/// after any write, so it costs nothing to keep it exact.
/// </summary>
/// <remarks>
/// Layout: this 32-byte header followed by Count entries (32 bytes each), one native block charged
/// to the store. Published in <see cref="TreeRecord.Plan"/> with a compare-exchange by a reader;
/// a plan is replaced only when stale, and no reader can be replaying a stale plan (it would hold the
/// read lock that kept the writer which made it stale waiting), so the replaced plan is freed at once.
/// </remarks>
internal unsafe struct IterationPlan
{
    public ulong Version;      // the tree's TreeLock.Version when built (64-bit: never wraps)
    public uint Count;
    public nuint Bytes;
    public int MaxDepth;       // deepest entry: replay sizes its buffers once
    public int MaxPathLength;  // longest stack, separators included

    public PlanEntry* Entries => (PlanEntry*)((byte*)Unsafe.AsPointer(ref this) + sizeof(IterationPlan));

    public static nuint SizeFor(uint count) => (nuint)sizeof(IterationPlan) + (nuint)count * (nuint)sizeof(PlanEntry);

    public static void Free(NativeAllocator* memory, IterationPlan* plan)
    {
        if (plan != null) NativeAllocator.Free(memory, plan, plan->Bytes);
    }
}
