using ProfileArena.Baseline;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Engine;

public class KeyPrefixTests
{
    [Fact]
    public void CommonLengthMatchesTheLibraryOnRandomPairs()
    {
        var rng = new SplitMix64(99);
        for (int round = 0; round < 5000; round++)
        {
            int length = (int)rng.NextBelow(400);
            var a = new byte[length];
            rng.NextBytes(a);
            byte[] b = [.. a[..(int)rng.NextBelow((ulong)length + 1)], .. new byte[rng.NextBelow(100)]];
            if (b.Length > 0 && rng.NextBelow(2) == 0) b[(int)rng.NextBelow((ulong)b.Length)] ^= (byte)(1 + rng.NextBelow(255));
            Assert.Equal(a.AsSpan().CommonPrefixLength(b), ProfileArena.Engine.KeyPrefix.CommonLength(a, b));
            Assert.Equal(b.AsSpan().CommonPrefixLength(a), ProfileArena.Engine.KeyPrefix.CommonLength(b, a));
        }
    }
}
