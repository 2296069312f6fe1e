using ProfileArena.Native;

namespace ProfileArena.Engine;

/// <summary>
/// Top(n): one linear pass over the node slabs (self = total − Σ child totals) with a bounded min-heap
/// of node indices; stacks are built only for the winners, and for ties at the heap's boundary.
/// Caller holds the tree's read lock.
/// </summary>
internal static unsafe class TopN
{
    public static TopEntry[] Find(StoreRoot* root, TreeRecord* tree, int n, TopBy by)
    {
        ref NodeSlabs nodes = ref tree->Nodes;
        uint count = nodes.Count;
        if (n == 0 || count <= 1) return [];
        int capacity = (int)Math.Min((uint)n, count - 1);
        var heap = new Candidate[capacity];
        var ctx = new Context(root, tree);
        int size = 0;
        ulong* totals = TreeWalker.SubtreeTotals(ref nodes, out nuint totalsBytes);
        try
        {
        for (uint i = 1; i < count; i++)
        {
            ulong value = by == TopBy.Self ? nodes[i]->Self : totals[i];
            if (value == 0) continue;
            var candidate = new Candidate(value, i);
            if (size < capacity)
            {
                int j = size++;
                while (j > 0 && ctx.Worse(candidate, heap[(j - 1) / 2])) { heap[j] = heap[(j - 1) / 2]; j = (j - 1) / 2; }
                heap[j] = candidate;
            }
            else if (ctx.Worse(heap[0], candidate))
            {
                heap[0] = candidate;
                SiftDown(ref ctx, heap, size);
            }
        }
        Array.Sort(heap, 0, size, Comparer<Candidate>.Create((a, b) => ctx.Worse(a, b) ? 1 : ctx.Worse(b, a) ? -1 : 0));
        var result = new TopEntry[size];
        for (int i = 0; i < size; i++)
        {
            uint index = heap[i].Index;
            result[i] = new TopEntry(ctx.Stack(index).ToArray(), nodes[index]->Self, totals[index]);
        }
        return result;
        }
        finally
        {
            NativeAllocator.FreeScratch(totals, totalsBytes);
        }
    }

    private static void SiftDown(ref Context ctx, Candidate[] heap, int size)
    {
        int i = 0;
        Candidate item = heap[0];
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= size) break;
            if (child + 1 < size && ctx.Worse(heap[child + 1], heap[child])) child++;
            if (!ctx.Worse(heap[child], item)) break;
            heap[i] = heap[child];
            i = child;
        }
        heap[i] = item;
    }

    private readonly record struct Candidate(ulong Value, uint Index);

    private sealed class Context(StoreRoot* root, TreeRecord* tree)
    {
        private byte[] _a = new byte[256], _b = new byte[256];
        private readonly List<uint> _path = new();

        /// <summary>a ranks below b: smaller value, or equal value and a later stack in ordinal order.</summary>
        public bool Worse(Candidate a, Candidate b)
        {
            if (a.Value != b.Value) return a.Value < b.Value;
            if (a.Index == b.Index) return false;
            int la = Build(a.Index, ref _a), lb = Build(b.Index, ref _b);
            return _a.AsSpan(0, la).SequenceCompareTo(_b.AsSpan(0, lb)) > 0;
        }

        public ReadOnlySpan<byte> Stack(uint index)
        {
            int length = Build(index, ref _a);
            return _a.AsSpan(0, length);
        }

        private int Build(uint index, ref byte[] buffer)
        {
            _path.Clear();
            for (uint i = index; i != 0; i = tree->Nodes[i]->Parent.Value) _path.Add(i);
            int length = 0;
            for (int d = _path.Count - 1; d >= 0; d--)
            {
                ReadOnlySpan<byte> name = root->Symbols.Name(tree->Nodes[_path[d]]->Symbol);
                int need = length + name.Length + 1;
                if (need > buffer.Length) Array.Resize(ref buffer, Math.Max(need, buffer.Length * 2));
                if (d != _path.Count - 1) buffer[length++] = TreeWriter.Separator;
                name.CopyTo(buffer.AsSpan(length));
                length += name.Length;
            }
            return length;
        }
    }
}
