namespace ProfileArena.Workloads;

/// <summary>The take-home program's tree generator (shared/tree-semantics.md, "The take-home workload").</summary>
public static class TakeHome
{
    /// <summary>Default shape of step 10: 100 trees, width 200, depth 500 (≈ 10 M nodes).</summary>
    public const int FirstStep = 10;

    public const int TreesPerStep = 100;

    /// <summary>Width of step <paramref name="step"/>: 20·step.</summary>
    public static int WidthOfStep(int step) => 20 * step;

    /// <summary>Depth of step <paramref name="step"/>: 50·step.</summary>
    public static int DepthOfStep(int step) => 50 * step;

    private const int RandomBytesPerSymbol = 40;

    /// <summary>Bytes one step adds to a key: ';' plus 80 lowercase hex characters.</summary>
    private const int SegmentLength = 1 + 2 * RandomBytesPerSymbol;

    private static ReadOnlySpan<byte> Root => "root"u8;

    private static ReadOnlySpan<byte> HexDigits => "0123456789abcdef"u8;

    // One key buffer per thread, grown to the longest key: generation allocates nothing per insert.
    // It starts at 64 KiB (depth ≤ 808, step 16) so that warming up with a small tree also covers
    // larger ones and allocation-measuring callers see zero bytes.
    private const int MinimumKeyBuffer = 64 * 1024;

    [ThreadStatic]
    private static byte[]? t_key;

    /// <summary>Nodes in one generated tree: the root, "root", and one per step (symbols are fresh).</summary>
    public static long NodesPerTree(int width, int depth) => 2 + (long)width * depth;

    /// <summary>
    /// Go's <c>generateTree(width, depth)</c>. For each of <paramref name="width"/> paths:
    /// <c>sym = "root"</c>; then <paramref name="depth"/> times: draw 40 random bytes (5 × NextUInt64,
    /// little-endian), append ';' and their 80 lowercase hex characters to <c>sym</c>, draw
    /// <c>r = NextBelow(100)</c> and <c>Insert(sym, r)</c>. After the depth loop, draw a fresh r and
    /// <c>Insert(sym, r)</c> once more (the leaf gets a second value, no new node).
    /// Every prefix is passed whole, as in Go; engines may exploit that consecutive keys share all
    /// but the last segment.
    /// </summary>
    /// <remarks>
    /// The key span passed to <see cref="IKeySink.Insert"/> points into a reused buffer and is only
    /// valid during the call. <paramref name="rng"/> is advanced: generate trees in order from one
    /// stream, like the Go program, to get the same trees in every run.
    /// </remarks>
    public static void GenerateTree<TSink>(ref SplitMix64 rng, int width, int depth, ref TSink sink)
        where TSink : IKeySink, allows ref struct
    {
        ArgumentOutOfRangeException.ThrowIfNegative(width);
        ArgumentOutOfRangeException.ThrowIfNegative(depth);

        long longest = Root.Length + (long)SegmentLength * depth;
        if (longest > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(depth), "Keys would exceed the maximum array length.");
        byte[] key = t_key is { } cached && cached.Length >= longest
            ? cached
            : t_key = new byte[Math.Max(MinimumKeyBuffer, Math.Max(longest, Math.Min(2L * (t_key?.Length ?? 0), Array.MaxLength)))];

        Root.CopyTo(key);
        for (int path = 0; path < width; path++)
        {
            int length = Root.Length;
            for (int step = 0; step < depth; step++)
            {
                key[length++] = (byte)';';
                // 40 bytes = 5 little-endian words; write their hex directly, no byte staging.
                for (int word = 0; word < RandomBytesPerSymbol / 8; word++)
                {
                    ulong bits = rng.NextUInt64();
                    for (int b = 0; b < 8; b++, bits >>= 8)
                    {
                        key[length++] = HexDigits[(int)(bits >> 4) & 0xF];
                        key[length++] = HexDigits[(int)bits & 0xF];
                    }
                }
                sink.Insert(key.AsSpan(0, length), rng.NextBelow(100));
            }
            sink.Insert(key.AsSpan(0, length), rng.NextBelow(100));
        }
    }
}
