using ProfileArena.Formats;

namespace ProfileArena.Tests.Formats;

/// <summary>
/// <see cref="RetainingArrayPool{T}"/> against a plain model over random rent/return sequences: what it holds
/// (count per length class, bytes) is what the model says, it never keeps more than its bounds, it hands kept
/// arrays out again, and arrays above its largest class or of foreign lengths are never kept.
/// </summary>
public sealed class RetainingArrayPoolTests
{
    [Theory]
    [InlineData(1, 64)]
    [InlineData(3, 1000)] // rounded down to 512
    [InlineData(8, 1 << 16)]
    public void Holds_what_a_model_says_and_never_more_than_its_bounds(int perSize, int maxLength)
    {
        var pool = new RetainingArrayPool<long>(perSize, maxLength);
        int largest = pool.MaxRetainedLength;
        Assert.True(largest <= maxLength && largest * 2 > maxLength);
        var model = new Dictionary<int, Stack<long[]>>(); // length → kept arrays
        var rented = new List<long[]>();
        var random = new Random(perSize * 31 + maxLength);
        for (int step = 0; step < 4000; step++)
        {
            if (rented.Count == 0 || random.Next(3) > 0)
            {
                int want = random.Next(5) == 0 ? random.Next(0, largest * 4) : random.Next(0, 200);
                long[] a = pool.Rent(want);
                Assert.True(a.Length >= want);
                if (want == 0) continue;
                if (want > largest)
                {
                    Assert.Equal(want, a.Length); // exact, not pooled
                }
                else
                {
                    int length = Math.Max(16, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)want));
                    Assert.Equal(length, a.Length);
                    if (model.TryGetValue(length, out var kept) && kept.Count > 0) Assert.Same(kept.Pop(), a); // a kept array comes back
                }
                rented.Add(a);
            }
            else
            {
                int i = random.Next(rented.Count);
                long[] a = rented[i];
                rented.RemoveAt(i);
                a[0] = 42;
                bool clear = random.Next(2) == 0;
                pool.Return(a, clear);
                int n = a.Length;
                bool keepable = n >= 16 && n <= largest && (n & (n - 1)) == 0;
                if (!keepable) continue;
                if (!model.TryGetValue(n, out var kept)) model[n] = kept = new Stack<long[]>();
                if (kept.Count < perSize) kept.Push(a);
                if (clear) Assert.Equal(0, a[0]);
            }
            long expected = model.Sum(kv => (long)kv.Key * kv.Value.Count) * sizeof(long);
            Assert.Equal(expected, pool.RetainedBytes);
            Assert.All(model.Values, s => Assert.True(s.Count <= perSize));
        }
        Assert.True(pool.RetainedBytes <= 2L * perSize * largest * sizeof(long));
    }

    [Theory]
    [InlineData(32, 1 << 12, 100_000)]
    [InlineData(4, 1 << 10, 1)] // keeps nothing
    [InlineData(64, 1 << 14, 1 << 20)]
    public void The_byte_bound_spans_length_classes_as_a_model_says(int perSize, int maxLength, long maxBytes)
    {
        var pool = new RetainingArrayPool<int>(perSize, maxLength, maxBytes);
        var model = new Dictionary<int, Stack<int[]>>();
        long modelBytes = 0;
        var rented = new List<int[]>();
        var random = new Random(perSize + maxLength + (int)maxBytes);
        for (int step = 0; step < 6000; step++)
        {
            if (rented.Count == 0 || random.Next(2) == 0)
            {
                int want = random.Next(1, pool.MaxRetainedLength + 1);
                int[] a = pool.Rent(want);
                if (model.TryGetValue(a.Length, out var kept) && kept.Count > 0)
                {
                    Assert.Same(kept.Pop(), a);
                    modelBytes -= a.Length * sizeof(int);
                }
                rented.Add(a);
            }
            else
            {
                int i = random.Next(rented.Count);
                int[] a = rented[i];
                rented.RemoveAt(i);
                pool.Return(a);
                if (!model.TryGetValue(a.Length, out var kept)) model[a.Length] = kept = new Stack<int[]>();
                if (kept.Count < perSize && modelBytes + a.Length * sizeof(int) <= maxBytes)
                {
                    kept.Push(a);
                    modelBytes += a.Length * sizeof(int);
                }
            }
            Assert.Equal(modelBytes, pool.RetainedBytes);
            Assert.True(pool.RetainedBytes <= maxBytes, $"step {step}: {pool.RetainedBytes} bytes kept, bound {maxBytes}");
        }
    }

    [Fact]
    public void Foreign_arrays_are_dropped_and_kept_reference_arrays_hold_no_objects()
    {
        var pool = new RetainingArrayPool<string>(4, 1024);
        pool.Return(new string[100]); // not a power of two
        pool.Return(new string[8]);   // below the smallest class
        pool.Return(new string[4096]); // above the largest
        Assert.Equal(0, pool.RetainedBytes);
        string[] a = pool.Rent(20);
        a[0] = "kept alive?";
        pool.Return(a);
        Assert.Equal(32L * IntPtr.Size, pool.RetainedBytes);
        Assert.Null(pool.Rent(17)[0]);
        Assert.Equal(0, pool.RetainedBytes);
    }

    [Fact]
    public void The_process_total_follows_every_pool()
    {
        var pool = new RetainingArrayPool<byte>(2, 1 << 20);
        byte[] a = pool.Rent(1 << 20);
        pool.Return(a);
        // Other pools of the process may move meanwhile (tests run in parallel), but never below zero each:
        // while our pool keeps the array, the process total includes its bytes.
        Assert.True(RetainingArrayPools.RetainedBytes >= 1 << 20, $"total {RetainingArrayPools.RetainedBytes}");
        Assert.Equal(1 << 20, pool.RetainedBytes);
        Assert.Same(a, pool.Rent((1 << 19) + 1));
        Assert.Equal(0, pool.RetainedBytes);
    }
}
