using ProfileArena.Native;

namespace ProfileArena.Tests.Native;

/// <summary>
/// SlabList's index math against a plain model of its slab table (native-notes.md, "SlabList"): slab s holds
/// 64·2^s items up to s = 7, then 8192 each; index i lives in the slab whose range holds it, at i minus the
/// slab's first index. Every index at and around each boundary, random indices, growth in random steps.
/// </summary>
public unsafe class SlabListTests
{
    /// <summary>The model: items per slab, and the first index of each slab, by walking the slab sizes.</summary>
    private static (int Slab, long Offset) Locate(long index)
    {
        long first = 0;
        for (int s = 0; ; s++)
        {
            long items = s < 8 ? 64L << s : 8192;
            if (index < first + items) return (s, index - first);
            first += items;
        }
    }

    private static long CapacityFor(long count)
    {
        long capacity = 0;
        for (int s = 0; capacity < count; s++) capacity += s < 8 ? 64L << s : 8192;
        return capacity;
    }

    [Fact]
    public void EveryIndexAroundEachSlabBoundaryAddressesTheModelsSlabAndOffset()
    {
        using var a = new TestAllocator();
        var list = new SlabList<long>();
        const long count = 16_320 + 3 * 8192 + 5; // the doubling slabs, three full-size ones, a few more
        list.EnsureCapacity(a.Memory, count);
        Assert.Equal((ulong)CapacityFor(count), list.Capacity);
        Assert.Equal(Locate(count - 1).Slab + 1, list.SlabCount);

        var indices = new List<long>();
        long first = 0;
        for (int s = 0; first < count; s++)
        {
            foreach (long d in new long[] { -2, -1, 0, 1, 2 })
                if (first + d >= 0 && first + d < count) indices.Add(first + d);
            first += s < 8 ? 64L << s : 8192;
        }
        var rng = new Random(11);
        for (int i = 0; i < 2000; i++) indices.Add(rng.NextInt64(count));

        foreach (long i in indices)
        {
            (int slab, long offset) = Locate(i);
            Assert.True(list[(uint)i] == list.Slab(slab) + offset, $"index {i}: expected slab {slab} offset {offset}");
        }
        list.Free(a.Memory);
        Assert.Equal(0, a.Bytes);
    }

    [Fact]
    public void GrowthInRandomStepsKeepsEveryItemWhereItWasAndChargesTheModelsSlabs()
    {
        var rng = new Random(5);
        for (int round = 0; round < 20; round++)
        {
            using var a = new TestAllocator();
            var list = new SlabList<long>();
            var pointers = new List<nint>();
            long count = 0;
            while (count < 40_000)
            {
                long next = count + rng.Next(1, round % 2 == 0 ? 300 : 9000);
                list.EnsureCapacity(a.Memory, (ulong)next);
                for (long i = count; i < next; i++)
                {
                    long* item = list[(uint)i];
                    *item = i * 7 + round;
                    pointers.Add((nint)item);
                }
                count = next;
                long expectedBytes = CapacityFor(count) * sizeof(long);
                Assert.True(a.Bytes >= expectedBytes && a.Bytes < expectedBytes + 4096,
                    $"{count} items: {a.Bytes} bytes held, the slabs alone are {expectedBytes}"); // + the slab directory
            }
            for (long i = 0; i < count; i++)
            {
                Assert.Equal((nint)list[(uint)i], pointers[(int)i]); // slabs never move
                Assert.Equal(i * 7 + round, *list[(uint)i]);
            }
            list.Free(a.Memory);
            Assert.Equal(0, a.Bytes);
        }
    }

    [Fact]
    public void NewSlabsAreZeroedUnlessAskedNotTo()
    {
        using var a = new TestAllocator();
        var list = new SlabList<long>();
        list.EnsureCapacity(a.Memory, 20_000);
        for (uint i = 0; i < 20_000; i++) Assert.Equal(0, *list[i]);
        list.Free(a.Memory);
    }

    [Fact]
    public void TrimSlabsGivesBackTheSlabsPastTheMarkAndTheirBytes()
    {
        var rng = new Random(9);
        for (int round = 0; round < 30; round++)
        {
            using var a = new TestAllocator();
            var list = new SlabList<int>();
            long before = rng.Next(0, 30_000);
            list.EnsureCapacity(a.Memory, (ulong)before);
            int slabs = list.SlabCount, directory = list.DirectoryCapacity;
            long bytes = a.Bytes;
            for (uint i = 0; i < before; i++) *list[i] = (int)i;
            list.EnsureCapacity(a.Memory, (ulong)(before + rng.Next(1, 50_000)));
            list.TrimSlabs(a.Memory, slabs, directory);
            Assert.Equal(slabs, list.SlabCount);
            Assert.Equal((ulong)CapacityFor(before), list.Capacity);
            Assert.Equal(bytes, a.Bytes);
            for (uint i = 0; i < before; i++) Assert.Equal((int)i, *list[i]);
            list.Free(a.Memory);
            Assert.Equal(0, a.Bytes);
        }
    }
}
