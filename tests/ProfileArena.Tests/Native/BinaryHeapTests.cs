using ProfileArena.Engine;

namespace ProfileArena.Tests.Native;

/// <summary>
/// The engine's one binary heap against plain references: SortDescending against Array.Sort (lengths on
/// both sides of the insertion-sort cutoff, many duplicates), LargestValues against sorting all values.
/// </summary>
public class BinaryHeapTests
{
    private readonly struct ByLowHalf : IComparer<ulong>
    {
        public int Compare(ulong a, ulong b) => ((uint)a).CompareTo((uint)b);
    }

    [Fact]
    public void SortDescendingMatchesASortedReference()
    {
        var rng = new Random(4);
        for (int n = 0; n < 300; n++)
        {
            int length = n < 40 ? n : rng.Next(0, 5000);
            ulong range = (ulong)(rng.Next(3) == 0 ? 4 : 1_000_000); // duplicates, or mostly distinct
            var items = new ulong[length];
            for (int i = 0; i < length; i++) items[i] = (ulong)rng.NextInt64((long)range);
            ulong[] expected = items.OrderByDescending(x => x).ToArray();
            BinaryHeap.SortDescending(items.AsSpan(), default(BinaryHeap.Ascending));
            Assert.Equal(expected, items);
        }
    }

    [Fact]
    public void SortDescendingUsesOnlyTheComparer()
    {
        // Equal keys by the comparer (low half) but different high halves: the order of keys is what counts.
        var rng = new Random(8);
        var items = new ulong[1000];
        for (int i = 0; i < items.Length; i++) items[i] = ((ulong)(uint)rng.Next() << 32) | (uint)rng.Next(50);
        BinaryHeap.SortDescending(items.AsSpan(), default(ByLowHalf));
        for (int i = 1; i < items.Length; i++) Assert.True((uint)items[i - 1] >= (uint)items[i]);
        Assert.Equal(items.Select(x => x).OrderBy(x => x), items.OrderBy(x => x)); // a permutation: nothing lost
    }

    [Fact]
    public void LargestValuesKeepsTheKLargestOffered()
    {
        var rng = new Random(6);
        for (int round = 0; round < 200; round++)
        {
            int k = rng.Next(1, 60);
            int n = rng.Next(0, 400);
            var values = new List<ulong>();
            using var best = new LargestValues(k);
            for (int i = 0; i < n; i++)
            {
                ulong v = (ulong)rng.NextInt64(rng.Next(2) == 0 ? 10 : long.MaxValue);
                values.Add(v);
                best.Offer(v);
                Assert.Equal(Math.Min(k, values.Count), best.Count);
                Assert.Equal(values.Count >= k, best.IsFull);
                // The smallest kept is the k-th largest so far (or the smallest of all while fewer than k).
                Assert.Equal(values.OrderByDescending(x => x).Take(k).Min(), best.Min);
            }
        }
    }
}
