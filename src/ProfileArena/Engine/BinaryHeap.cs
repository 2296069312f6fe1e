using ProfileArena.Native;

namespace ProfileArena.Engine;

/// <summary>
/// The engine's one binary heap, over a span (native scratch or a slice of the caller's array) and a
/// struct comparer the JIT specialises: no allocation, no delegate. Its uses: the k largest values
/// (<see cref="LargestValues"/>: Top's cut and Truncate's cut) and the in-place sort of a node's
/// children by name (Iterate, <see cref="SortDescending"/>).
/// </summary>
/// <remarks>A min-heap by <c>TOrder</c>: <c>heap[0]</c> is the smallest item, each parent ≤ its children.</remarks>
internal static class BinaryHeap
{
    /// <summary>Restores the heap below <paramref name="i"/> after <c>heap[i]</c> grew (or was replaced).</summary>
    public static void SiftDown<T, TOrder>(Span<T> heap, int i, TOrder order) where TOrder : struct, IComparer<T>
    {
        int count = heap.Length;
        T item = heap[i];
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= count) break;
            if (child + 1 < count && order.Compare(heap[child + 1], heap[child]) < 0) child++;
            if (order.Compare(heap[child], item) >= 0) break;
            heap[i] = heap[child];
            i = child;
        }
        heap[i] = item;
    }

    /// <summary>Restores the heap above <paramref name="i"/> after <c>heap[i]</c> was appended (or shrank).</summary>
    public static void SiftUp<T, TOrder>(Span<T> heap, int i, TOrder order) where TOrder : struct, IComparer<T>
    {
        T item = heap[i];
        while (i > 0)
        {
            int parent = (i - 1) / 2;
            if (order.Compare(heap[parent], item) <= 0) break;
            heap[i] = heap[parent];
            i = parent;
        }
        heap[i] = item;
    }

    /// <summary>
    /// Sorts <paramref name="items"/> largest first by <paramref name="order"/>, in place: insertion sort
    /// up to 16 items, else heap sort (build a min-heap, then move the minimum to the end, repeatedly).
    /// No recursion, no allocation, O(n log n) comparisons whatever the input.
    /// </summary>
    public static void SortDescending<T, TOrder>(Span<T> items, TOrder order) where TOrder : struct, IComparer<T>
    {
        int count = items.Length;
        if (count <= 16)
        {
            for (int i = 1; i < count; i++)
            {
                T item = items[i];
                int j = i - 1;
                while (j >= 0 && order.Compare(items[j], item) < 0)
                {
                    items[j + 1] = items[j];
                    j--;
                }
                items[j + 1] = item;
            }
            return;
        }
        for (int i = count / 2 - 1; i >= 0; i--) SiftDown(items, i, order);
        for (int end = count - 1; end > 0; end--)
        {
            (items[0], items[end]) = (items[end], items[0]);
            SiftDown(items[..end], 0, order);
        }
    }

    /// <summary>Ascending order of 64-bit values.</summary>
    public readonly struct Ascending : IComparer<ulong>
    {
        public int Compare(ulong a, ulong b) => a.CompareTo(b);
    }
}

/// <summary>
/// The <c>k</c> largest values offered so far: a bounded min-heap in native scratch (freed by
/// <see cref="Dispose"/>), so <see cref="Min"/> is the k-th largest once <see cref="IsFull"/>.
/// </summary>
internal unsafe struct LargestValues : IDisposable
{
    private ulong* _heap;
    private readonly int _capacity;
    private int _count;

    public LargestValues(int k)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        _capacity = k;
        _heap = (ulong*)NativeAllocator.AllocScratch((nuint)k * sizeof(ulong));
    }

    public readonly int Count => _count;

    public readonly bool IsFull => _count == _capacity;

    /// <summary>The smallest value kept (the k-th largest offered, once full). Only when <see cref="Count"/> &gt; 0.</summary>
    public readonly ulong Min => _heap[0];

    /// <summary>Keeps <paramref name="value"/> if fewer than k are kept or it beats the smallest kept.</summary>
    public void Offer(ulong value)
    {
        if (_count < _capacity)
        {
            _heap[_count] = value;
            _count++;
            BinaryHeap.SiftUp(new Span<ulong>(_heap, _count), _count - 1, default(BinaryHeap.Ascending));
        }
        else if (value > _heap[0])
        {
            _heap[0] = value;
            BinaryHeap.SiftDown(new Span<ulong>(_heap, _count), 0, default(BinaryHeap.Ascending));
        }
    }

    public void Dispose()
    {
        if (_heap != null) NativeAllocator.FreeScratch(_heap, (nuint)_capacity * sizeof(ulong));
        _heap = null;
    }
}
