using ProfileArena.Formats;

namespace ProfileArena.Tests.Formats;

/// <summary>The pprof decoder's pooled tables against the BCL collections they replace, over random operations.</summary>
public sealed class PooledTablesTests
{
    [Theory]
    [InlineData(1, 0UL)]          // dense ids 1..n, as pprof writers number them
    [InlineData(2, 1UL << 20)]    // strided ids
    [InlineData(3, 0UL)]          // random 64-bit ids, including 0 and ulong.MaxValue
    [InlineData(4, 0UL)]          // ids 1, 2, 3, … (the dense layout) until a far one turns the map hashed
    public void IdMapMatchesDictionary(int seed, ulong stride)
    {
        var random = new Random(seed);
        for (int round = 0; round < 20; round++)
        {
            using var map = new PooledIdMap<(long, int)>();
            var reference = new Dictionary<ulong, (long, int)>();
            int operations = random.Next(0, 5000);
            for (int i = 0; i < operations; i++)
            {
                ulong id = seed switch
                {
                    1 => (ulong)random.Next(1, 3000),
                    2 => (ulong)random.Next(0, 3000) * stride,
                    4 => random.Next(400) == 0 ? (ulong)random.NextInt64() : (ulong)(i + 1),
                    _ => random.Next(10) == 0 ? (random.Next(2) == 0 ? 0UL : ulong.MaxValue) : (ulong)random.NextInt64() * 2 + (ulong)random.Next(2),
                };
                if (random.Next(3) == 0)
                {
                    bool found = map.TryGetValue(id, out var value);
                    Assert.Equal(reference.TryGetValue(id, out var expected), found);
                    if (found) Assert.Equal(expected, value);
                    Assert.Equal(found, map.TryGetSlot(id, out int slot));
                    if (found) Assert.Equal(expected, map.ValueAt(slot));
                }
                else
                {
                    var value = (random.NextInt64(), i);
                    map[id] = value; // a repeated id replaces, as the Dictionary indexer
                    reference[id] = value;
                }
            }
            Assert.Equal(reference.Count, map.Count);
            foreach (var (id, expected) in reference)
            {
                Assert.True(map.TryGetValue(id, out var value));
                Assert.Equal(expected, value);
            }
        }
    }

    [Fact]
    public void ListMatchesListAndEmptiesOnDispose()
    {
        var random = new Random(7);
        var list = new PooledList<(int, int)>();
        var reference = new List<(int, int)>();
        for (int i = 0; i < 100_000; i++)
        {
            var item = (random.Next(), i);
            list.Add(item);
            reference.Add(item);
        }
        Assert.Equal(reference.Count, list.Count);
        Assert.Equal(reference, list.AsSpan().ToArray());
        Assert.Equal(reference[12_345], list[12_345]);
        Assert.Throws<ArgumentOutOfRangeException>(() => list[reference.Count]);
        list.Dispose();
        Assert.Equal(0, list.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => list[0]);
    }
}
