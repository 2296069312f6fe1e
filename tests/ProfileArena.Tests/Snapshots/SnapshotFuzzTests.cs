using System.Buffers.Binary;
using System.Diagnostics;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Snapshots;

/// <summary>
/// Mutation fuzzing of real snapshots: every mutated file either loads into a store that then
/// behaves (iterate, top, truncate, insert, save/load round trip) or is rejected with an
/// InvalidDataException naming a byte offset. Anything else — another exception, a crash, a hang —
/// fails. Most mutations are re-sealed (checksums recomputed) so they reach the structural checks.
/// </summary>
public class SnapshotFuzzTests
{
    /// <summary>CI runs 100,000; set PA_FUZZ_MUTATIONS for a longer run by hand.</summary>
    private static int Mutations => int.TryParse(Environment.GetEnvironmentVariable("PA_FUZZ_MUTATIONS"), out int n) ? n : 100_000;

    private static List<byte[]> Seeds()
    {
        var seeds = new List<byte[]>();
        // Small real trees: the first lines of a few collapsed files, plus odd names and a removed slot.
        foreach (string path in SharedData.Files("collapsed").Where((_, i) => i % 9 == 0).Take(3))
        {
            using var store = new TreeStore();
            var t = store.CreateTree();
            foreach (var (stack, count) in FoldedLines.Read(path).Take(12)) t.Insert(stack, count);
            var gone = store.CreateTree();
            store.CreateTree().Insert("a;;b", 3);
            store.Remove(gone);
            seeds.Add(SnapshotBytes.Of(store));
        }
        return seeds;
    }

    private static readonly uint[] Interesting = [0, 1, 2, 3, 7, 31, 32, 63, 64, 65, 0x7F, 0x80, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF];

    private static byte[] Mutate(byte[] seed, ref SplitMix64 rng)
    {
        byte[] file = seed;
        int kind = (int)rng.NextBelow(10);
        bool reseal = kind >= 2;
        switch (kind)
        {
            case 0 or 1 or 2 or 3: // bit flips
                file = (byte[])seed.Clone();
                for (int i = 1 + (int)rng.NextBelow(3); i > 0; i--) file[rng.NextBelow((ulong)file.Length)] ^= (byte)(1 << (int)rng.NextBelow(8));
                break;
            case 4 or 5 or 6 or 7: // an interesting 32-bit value at an aligned offset (counts, links, lengths, ids)
                file = (byte[])seed.Clone();
                int at = (int)rng.NextBelow((ulong)file.Length / 4) * 4;
                uint v = rng.NextBelow(3) == 0 ? (uint)rng.NextUInt64() : Interesting[rng.NextBelow((ulong)Interesting.Length)];
                BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(at), v);
                break;
            case 8: // truncation
                file = seed.AsSpan(0, (int)rng.NextBelow((ulong)seed.Length)).ToArray();
                break;
            default: // a block duplicated or dropped
                int block = (int)rng.NextBelow((ulong)seed.Length / 64) * 64;
                file = rng.NextBelow(2) == 0
                    ? [.. seed.AsSpan(0, block), .. seed.AsSpan(block, 64), .. seed.AsSpan(block)]
                    : [.. seed.AsSpan(0, block), .. seed.AsSpan(Math.Min(seed.Length, block + 64))];
                break;
        }
        if (reseal) SnapshotBytes.Reseal(file);
        return file;
    }

    private static void Exercise(TreeStore store, bool deep = true)
    {
        foreach (var t in store.GetTrees())
        {
            ulong sum = 0;
            t.Iterate((_, self, total) => { sum += self; Assert.True(total >= self); });
            Assert.Equal(t.Total, sum);
            t.Top(3, TopBy.Self);
            t.Top(3, TopBy.Total);
        }
        if (store.IsReadOnly || !deep) return;
        foreach (var t in store.GetTrees())
        {
            t.Insert("fuzz;a", 1);
            t.Truncate(4);
        }
        var copy = TreeStore.Load(new MemoryStream(SnapshotBytes.Of(store)));
        copy.Dispose();
    }

    [Fact]
    public void HundredThousandMutationsLoadOrFailCleanly()
    {
        var seeds = Seeds();
        var rng = new SplitMix64(2026);
        int loaded = 0, rejected = 0;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < Mutations; i++)
        {
            byte[] file = Mutate(seeds[i % seeds.Count], ref rng);
            try
            {
                using var store = TreeStore.Load(new MemoryStream(file));
                Exercise(store, deep: loaded++ % 8 == 0);
            }
            catch (InvalidDataException e)
            {
                if (!e.Message.Contains("byte offset")) throw new Xunit.Sdk.XunitException($"mutation {i}: no offset in \"{e.Message}\"");
                rejected++;
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                throw new Xunit.Sdk.XunitException($"mutation {i} ({Convert.ToHexString(file)}): {e}");
            }
        }
        Console.Error.WriteLine($"{Mutations} mutations in {clock.Elapsed.TotalSeconds:F1} s: {loaded} loaded, {rejected} rejected");
        Assert.True(rejected > Mutations / 2);
    }

    [Fact]
    public void MappedMutationsOpenOrFailCleanly()
    {
        var seeds = Seeds();
        var rng = new SplitMix64(7);
        string path = Path.GetTempFileName();
        try
        {
            int count = Math.Max(300, Mutations / 200);
            for (int i = 0; i < count; i++)
            {
                byte[] file = Mutate(seeds[i % seeds.Count], ref rng);
                File.WriteAllBytes(path, file);
                try
                {
                    using var store = TreeStore.OpenSnapshot(path);
                    Exercise(store);
                }
                catch (InvalidDataException e)
                {
                    Assert.Contains("byte offset", e.Message);
                }
            }
        }
        finally
        {
            File.Delete(path);
        }
    }
}
