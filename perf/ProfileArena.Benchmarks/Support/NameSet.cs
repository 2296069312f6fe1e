using ProfileArena.Workloads;

namespace ProfileArena.Benchmarks.Support;

/// <summary>A list of names in one blob (no object per name).</summary>
public sealed class NameSet
{
    private readonly byte[] _blob;
    private readonly int[] _start;

    private NameSet(byte[] blob, int[] start)
    {
        _blob = blob;
        _start = start;
    }

    public int Count => _start.Length - 1;

    public ReadOnlySpan<byte> this[int i] => _blob.AsSpan(_start[i], _start[i + 1] - _start[i]);

    public long Bytes => _blob.Length;

    public static NameSet From(IReadOnlyList<byte[]> names)
    {
        var start = new int[names.Count + 1];
        var blob = new byte[names.Sum(n => n.Length)];
        int pos = 0;
        for (int i = 0; i < names.Count; i++)
        {
            start[i] = pos;
            names[i].CopyTo(blob, pos);
            pos += names[i].Length;
        }
        start[names.Count] = pos;
        return new NameSet(blob, start);
    }

    /// <summary><paramref name="count"/> take-home names: 80 lowercase hex characters of 40 random bytes each.</summary>
    public static NameSet TakeHome(ulong seed, int count)
    {
        var rng = new SplitMix64(seed);
        var names = new List<byte[]>(count);
        Span<byte> raw = stackalloc byte[40];
        for (int i = 0; i < count; i++)
        {
            rng.NextBytes(raw);
            names.Add(System.Text.Encoding.ASCII.GetBytes(Convert.ToHexStringLower(raw)));
        }
        return From(names);
    }

    /// <summary>The same names with a suffix that no real or take-home name has: guaranteed misses.</summary>
    public NameSet WithSuffix(ReadOnlySpan<byte> suffix)
    {
        var names = new List<byte[]>(Count);
        for (int i = 0; i < Count; i++)
        {
            var n = new byte[this[i].Length + suffix.Length];
            this[i].CopyTo(n);
            suffix.CopyTo(n.AsSpan(this[i].Length));
            names.Add(n);
        }
        return From(names);
    }
}
