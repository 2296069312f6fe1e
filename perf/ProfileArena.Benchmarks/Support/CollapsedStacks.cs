using System.Buffers.Text;

namespace ProfileArena.Benchmarks.Support;

/// <summary>
/// Every stack of every file under ../shared/testdata/collapsed, parsed once into byte keys and counts
/// (one blob, no object per stack) so the benchmarks time only the inserts. Parsing mirrors the tests'
/// reader: one "stack count" per line, split at the last space or tab, blank and '#' / '//' lines
/// skipped, a fractional count truncated, lines without a count skipped.
/// </summary>
public sealed class CollapsedStacks
{
    private readonly byte[] _blob;
    private readonly int[] _start;
    private readonly int[] _length;
    private readonly ulong[] _count;

    private CollapsedStacks(byte[] blob, int[] start, int[] length, ulong[] count, int files)
    {
        _blob = blob;
        _start = start;
        _length = length;
        _count = count;
        Files = files;
    }

    public int Count => _start.Length;
    public int Files { get; }
    public long KeyBytes { get; private init; }

    public ReadOnlySpan<byte> Key(int i) => _blob.AsSpan(_start[i], _length[i]);
    public ulong Value(int i) => _count[i];

    private static CollapsedStacks? s_all;

    /// <summary>All files, in ordinal path order (cached per process).</summary>
    public static CollapsedStacks All => s_all ??= Load(RepoPaths.CollapsedDir);

    public static CollapsedStacks Load(string dir)
    {
        var files = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new FileNotFoundException($"no files under {dir}");
        var blob = new MemoryStream();
        var start = new List<int>();
        var length = new List<int>();
        var count = new List<ulong>();
        foreach (string file in files)
        {
            ReadOnlySpan<byte> text = File.ReadAllBytes(file);
            if (text.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) text = text[3..];
            while (!text.IsEmpty)
            {
                int nl = text.IndexOf((byte)'\n');
                ReadOnlySpan<byte> line = nl < 0 ? text : text[..nl];
                text = nl < 0 ? default : text[(nl + 1)..];
                line = line.TrimEnd(" \t\r"u8);
                if (line.IsEmpty || line[0] == (byte)'#' || line.StartsWith("//"u8)) continue;
                int split = line.LastIndexOfAny((byte)' ', (byte)'\t');
                if (split < 0) continue;
                ReadOnlySpan<byte> number = line[(split + 1)..];
                int dot = number.IndexOf((byte)'.');
                if (dot >= 0) number = number[..dot];
                if (number.IsEmpty || number.IndexOfAnyExceptInRange((byte)'0', (byte)'9') >= 0) continue;
                if (!Utf8Parser.TryParse(number, out ulong value, out int consumed) || consumed != number.Length) continue;
                ReadOnlySpan<byte> stack = line[..split].TrimEnd(" \t"u8);
                start.Add((int)blob.Length);
                length.Add(stack.Length);
                count.Add(value);
                blob.Write(stack);
            }
        }
        if (start.Count == 0) throw new InvalidDataException($"no stacks parsed under {dir}");
        return new CollapsedStacks(blob.ToArray(), start.ToArray(), length.ToArray(), count.ToArray(), files.Count)
        {
            KeyBytes = blob.Length,
        };
    }

    /// <summary>Distinct non-empty frame names of all stacks (for the symbol benchmarks), in first-seen order.</summary>
    public NameSet DistinctFrames()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var names = new List<byte[]>();
        for (int i = 0; i < Count; i++)
        {
            ReadOnlySpan<byte> key = Key(i);
            foreach (Range r in key.Split((byte)';'))
            {
                ReadOnlySpan<byte> name = key[r];
                if (name.IsEmpty) continue; // the empty name is symbol 0 of every store
                if (seen.Add(Convert.ToBase64String(name))) names.Add(name.ToArray());
            }
        }
        return NameSet.From(names);
    }
}
