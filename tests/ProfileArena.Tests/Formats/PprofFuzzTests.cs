using System.Diagnostics;
using System.IO.Compression;
using ProfileArena.Formats;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Formats;

/// <summary>
/// Mutation fuzzing of every real pprof file: bit flips, truncations, edits of real length fields, inserted
/// and interesting varints, moved blocks, and damaged gzip. Every mutated profile either imports or is
/// rejected with a ProfileFormatException naming a byte offset, and a rejected import leaves the target
/// tree as it was. Anything else — another exception, a crash, a hang — fails.
/// </summary>
public class PprofFuzzTests
{
    /// <summary>CI runs 5,000 (about 10 s on a quiet machine); set PA_PPROF_FUZZ_MUTATIONS for a longer run by hand.</summary>
    private static int Mutations => int.TryParse(Environment.GetEnvironmentVariable("PA_PPROF_FUZZ_MUTATIONS"), out int n) ? n : 5_000;

    private sealed record Seed(string Name, byte[] Raw, byte[] Gzipped, int[] LengthFields);

    private static List<Seed> Seeds() => SharedData.Files("pprof").Select(path =>
    {
        byte[] file = File.ReadAllBytes(path);
        byte[] raw = HostileInputTests.Gunzip(file);
        var lengths = new List<int>();
        FindLengthFields(raw, 0, raw.Length, lengths, depth: 0);
        return new Seed(SharedData.Relative(path), raw, file, lengths.ToArray());
    }).ToList();

    /// <summary>Offsets of the length prefixes of length-delimited fields, in every payload that parses as a
    /// message (the real nesting: samples, locations and their lines, functions, value types).</summary>
    private static void FindLengthFields(byte[] data, int start, int end, List<int> found, int depth)
    {
        int at = start;
        var before = found.Count;
        while (at < end)
        {
            if (!TryVarint(data, ref at, end, out ulong tag)) { found.RemoveRange(before, found.Count - before); return; }
            int wire = (int)(tag & 7);
            if (tag >> 3 == 0) { found.RemoveRange(before, found.Count - before); return; }
            switch (wire)
            {
                case 0: if (!TryVarint(data, ref at, end, out _)) { found.RemoveRange(before, found.Count - before); return; } break;
                case 1: at += 8; break;
                case 5: at += 4; break;
                case 2:
                    int lengthAt = at;
                    if (!TryVarint(data, ref at, end, out ulong length) || length > (ulong)(end - at)) { found.RemoveRange(before, found.Count - before); return; }
                    found.Add(lengthAt);
                    if (depth < 3 && length > 0) FindLengthFields(data, at, at + (int)length, found, depth + 1);
                    at += (int)length;
                    break;
                default: found.RemoveRange(before, found.Count - before); return;
            }
        }
        if (at != end) found.RemoveRange(before, found.Count - before);
    }

    private static bool TryVarint(byte[] data, ref int at, int end, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64 && at < end; shift += 7)
        {
            byte b = data[at++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return true;
        }
        return false;
    }

    private static byte[] Varint(ulong v)
    {
        var bytes = new List<byte>();
        while (v >= 0x80) { bytes.Add((byte)(v | 0x80)); v >>= 7; }
        bytes.Add((byte)v);
        return bytes.ToArray();
    }

    private static readonly ulong[] Interesting = [0, 1, 2, 3, 7, 8, 127, 128, 255, 16_383, 16_384, 65_535, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 1UL << 32, long.MaxValue, 1UL << 63, ulong.MaxValue];

    private static byte[] Splice(byte[] data, int at, int removed, ReadOnlySpan<byte> inserted) =>
        [.. data.AsSpan(0, at), .. inserted, .. data.AsSpan(Math.Min(data.Length, at + removed))];

    private static byte[] Mutate(Seed seed, ref SplitMix64 rng)
    {
        byte[] raw = seed.Raw;
        switch ((int)rng.NextBelow(10))
        {
            case 0 or 1: // bit flips
            {
                byte[] file = (byte[])raw.Clone();
                for (int i = 1 + (int)rng.NextBelow(3); i > 0; i--) file[rng.NextBelow((ulong)file.Length)] ^= (byte)(1 << (int)rng.NextBelow(8));
                return file;
            }
            case 2: // truncation
                return raw[..(int)rng.NextBelow((ulong)raw.Length)];
            case 3 or 4 or 5: // a real length field set to another value (re-encoded: its size may change)
            {
                if (seed.LengthFields.Length == 0) goto case 2;
                int at = seed.LengthFields[rng.NextBelow((ulong)seed.LengthFields.Length)];
                int end = at;
                TryVarint(raw, ref end, raw.Length, out ulong old);
                ulong value = rng.NextBelow(3) switch
                {
                    0 => Interesting[rng.NextBelow((ulong)Interesting.Length)],
                    1 => old + 1 + rng.NextBelow(4),
                    _ => old - Math.Min(old, 1 + rng.NextBelow(4)),
                };
                return Splice(raw, at, end - at, Varint(value));
            }
            case 6: // inserted bytes
            {
                byte[] inserted = new byte[1 + rng.NextBelow(8)];
                for (int i = 0; i < inserted.Length; i++) inserted[i] = (byte)rng.NextUInt64();
                return Splice(raw, (int)rng.NextBelow((ulong)raw.Length + 1), 0, inserted);
            }
            case 7: // an interesting varint written over whatever is there
            {
                int at = (int)rng.NextBelow((ulong)raw.Length);
                byte[] v = Varint(Interesting[rng.NextBelow((ulong)Interesting.Length)]);
                return Splice(raw, at, v.Length, v);
            }
            case 8: // a block duplicated or dropped
            {
                int at = (int)rng.NextBelow((ulong)raw.Length), size = 1 + (int)rng.NextBelow(64);
                return rng.NextBelow(2) == 0
                    ? Splice(raw, at, 0, raw.AsSpan(at, Math.Min(size, raw.Length - at)))
                    : Splice(raw, at, size, []);
            }
            default: // damaged gzip: a flipped bit or a truncation of the compressed file
            {
                byte[] gz = seed.Gzipped;
                if (rng.NextBelow(2) == 0) return gz[..(int)rng.NextBelow((ulong)gz.Length)];
                byte[] file = (byte[])gz.Clone();
                file[rng.NextBelow((ulong)file.Length)] ^= (byte)(1 << (int)rng.NextBelow(8));
                return file;
            }
        }
    }

    private sealed class CountingSink : IPprofSampleSink
    {
        public long Samples;
        public void Begin(PprofProfileInfo info) => Assert.NotEmpty(info.SampleTypes);
        public void Sample(ReadOnlySpan<byte> stack, ReadOnlySpan<long> values) => Samples++;
    }

    [Fact]
    public void MutatedProfilesImportOrFailWithAnOffsetAndChangeNothing()
    {
        List<Seed> seeds = Seeds();
        Assert.Equal(6, seeds.Count);
        Assert.All(seeds, s => Assert.NotEmpty(s.LengthFields));
        // large.cpu (MBs decompressed) is mutated once per 200; the small files share the rest.
        Seed large = seeds.Single(s => s.Name.EndsWith("large.cpu", StringComparison.Ordinal));
        List<Seed> small = seeds.Where(s => s != large).ToList();
        var rng = new SplitMix64(14_2026);
        int imported = 0, rejected = 0;
        var clock = Stopwatch.StartNew();
        using var store = new TreeStore();
        ProfileTree target = store.CreateTree();
        target.Insert("kept;before", 1);
        var before = TreeSnapshot.Of(target);
        for (int i = 0; i < Mutations; i++)
        {
            Seed seed = i % 200 == 199 ? large : small[i % small.Count];
            byte[] input = Mutate(seed, ref rng);
            try
            {
                PprofImportResult result = PprofFormat.Import(new MemoryStream(input), target);
                imported++;
                Assert.Equal(1 + result.Total, target.Total);
                target.Clear();
                target.Insert("kept;before", 1);
            }
            catch (ProfileFormatException e)
            {
                rejected++;
                if (e.ByteOffset < 0 || e.ByteOffset > new PprofImportOptions().MaxBytes)
                    throw new Xunit.Sdk.XunitException($"mutation {i} of {seed.Name}: offset {e.ByteOffset} for a {input.Length}-byte input: {e.Message}");
                if (i % 16 == 0)
                    Assert.Equal(before, TreeSnapshot.Of(target));
                else if (target.Total != 1 || target.NodeCount != 3)
                    throw new Xunit.Sdk.XunitException($"mutation {i} of {seed.Name}: the target changed");
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                throw new Xunit.Sdk.XunitException($"mutation {i} of {seed.Name} ({Convert.ToHexString(input.AsSpan(0, Math.Min(input.Length, 4096)))}): {e}");
            }
            if (i % 4 == 0)
            {
                // Read, the server's multi-type path, throws nothing else either.
                try { PprofFormat.Read(new MemoryStream(input), new CountingSink()); }
                catch (ProfileFormatException) { }
                catch (Exception e) when (e is not Xunit.Sdk.XunitException)
                {
                    throw new Xunit.Sdk.XunitException($"Read, mutation {i} of {seed.Name}: {e}");
                }
            }
        }
        double seconds = clock.Elapsed.TotalSeconds;
        Console.Error.WriteLine($"pprof fuzz: {Mutations} mutations in {seconds:F1} s ({Mutations / seconds:N0}/s): {imported} imported, {rejected} rejected, nothing else");
        Assert.True(rejected > Mutations / 4, $"only {rejected} of {Mutations} rejected: the mutations barely damage anything");
        Assert.True(imported > Mutations / 50, $"only {imported} of {Mutations} imported: the mutations never leave a valid profile");
    }
}
