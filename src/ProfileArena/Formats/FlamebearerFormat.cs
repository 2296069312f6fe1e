using System.Text;
using System.Text.Json;

namespace ProfileArena.Formats;

/// <summary>Options of <see cref="FlamebearerFormat.Export(ProfileTree, Stream, FlamebearerOptions?)"/>.</summary>
public sealed class FlamebearerOptions
{
    /// <summary>Most nodes kept before small ones are folded into "other" (default 8192, pyroscope's
    /// render default); 0 or less keeps every node.</summary>
    public int MaxNodes { get; init; } = 8192;

    /// <summary>metadata.name of the profile (default empty).</summary>
    public string Name { get; init; } = "";

    /// <summary>metadata.units (default "samples").</summary>
    public string Units { get; init; } = "samples";

    /// <summary>metadata.sampleRate (default 100).</summary>
    public uint SampleRate { get; init; } = 100;
}

/// <summary>
/// Pyroscope's flamebearer JSON, "single" format, version 1:
/// <c>{"version":1,"flamebearer":{"names":[…],"levels":[[…],…],"numTicks":N,"maxSelf":M},"metadata":{…}}</c>.
/// </summary>
/// <remarks>
/// Level 0 holds the root, named "total". Each node is 4 integers: x offset, total, self, index into names.
/// Within a node its self comes first and its children follow, in tree order; the x offset is delta-encoded
/// against the end (x + total) of the previous node of the same level. With <see cref="FlamebearerOptions.MaxNodes"/>
/// = K, as pyroscope does: the threshold is the K-th largest total among all nodes but the root, nodes
/// under it are dropped with their subtrees, and each parent gets one child "other" (self = total = the
/// dropped totals) after its kept children, so every level still adds up. Names are UTF-8 (invalid bytes
/// become U+FFFD); values above 2^53 lose precision in JavaScript readers.
/// </remarks>
public static class FlamebearerFormat
{
    /// <summary>Writes the tree as flamebearer JSON to <paramref name="output"/> (not closed).</summary>
    public static void Export(ProfileTree tree, Stream output, FlamebearerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        options ??= new FlamebearerOptions();
        ulong minTotal = MinTotal(tree, options.MaxNodes);
        var builder = new LevelsBuilder(minTotal, tree.Total);
        tree.Iterate(ref builder);
        builder.Close(0);

        using var json = new Utf8JsonWriter(output);
        json.WriteStartObject();
        json.WriteNumber("version", 1);
        json.WriteStartObject("flamebearer");
        json.WriteStartArray("names");
        foreach (string name in builder.Names) json.WriteStringValue(name);
        json.WriteEndArray();
        json.WriteStartArray("levels");
        foreach (List<ulong> level in builder.Levels)
        {
            json.WriteStartArray();
            foreach (ulong v in level) json.WriteNumberValue(v);
            json.WriteEndArray();
        }
        json.WriteEndArray();
        json.WriteNumber("numTicks", tree.Total);
        json.WriteNumber("maxSelf", builder.MaxSelf);
        json.WriteEndObject();
        json.WriteStartObject("metadata");
        json.WriteString("format", "single");
        json.WriteString("spyName", "");
        json.WriteNumber("sampleRate", options.SampleRate);
        json.WriteString("units", options.Units);
        json.WriteString("name", options.Name);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>The K-th largest total among all nodes but the root; 0 when the tree has at most K nodes.</summary>
    private static ulong MinTotal(ProfileTree tree, int maxNodes)
    {
        if (maxNodes <= 0 || tree.NodeCount - 1 <= maxNodes) return 0;
        var top = new TopTotals(maxNodes);
        tree.Iterate(ref top);
        return top.Min;
    }

    private readonly struct TopTotals(int capacity) : IStackVisitor
    {
        private readonly PriorityQueue<ulong, ulong> _heap = new(capacity + 1);

        public ulong Min => _heap.Count < capacity ? 0 : _heap.Peek();

        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
        {
            if (_heap.Count < capacity) _heap.Enqueue(total, total);
            else if (total > _heap.Peek()) _heap.EnqueueDequeue(total, total);
        }
    }

    private static ReadOnlySpan<byte> Other => "other"u8;

    /// <summary>Builds the levels in one pre-order pass: a node's x is known when it is visited
    /// (parent x + parent self + totals of earlier kept siblings), and a parent's "other" child is
    /// emitted when its subtree closes, after its kept children.</summary>
    private struct LevelsBuilder : IStackVisitor
    {
        private readonly ulong _minTotal;
        private readonly Dictionary<string, int> _nameIndex = new(StringComparer.Ordinal);
        private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
        private readonly List<ulong> _cursor = [], _other = [], _levelEnd = [];
        private readonly List<bool> _kept = [];
        private readonly StackDepthTracker _tracker = new();
        private char[] _chars = new char[256];
        private int _depth;

        public LevelsBuilder(ulong minTotal, ulong rootTotal)
        {
            _minTotal = minTotal;
            _lookup = _nameIndex.GetAlternateLookup<ReadOnlySpan<char>>();
            Names.Add("total");
            _nameIndex.Add("total", 0);
            _cursor.Add(0);
            _other.Add(0);
            _kept.Add(true);
            Emit(0, 0, rootTotal, 0, 0);
        }

        public List<string> Names { get; } = [];

        public List<List<ulong>> Levels { get; } = [];

        public ulong MaxSelf { get; private set; }

        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
        {
            int depth = _tracker.Next(stack);
            Close(depth);
            int parent = depth - 1;
            while (_cursor.Count <= depth)
            {
                _cursor.Add(0);
                _other.Add(0);
                _kept.Add(false);
            }
            _depth = depth;
            _other[depth] = 0;
            if (!_kept[parent])
            {
                _kept[depth] = false;
                return;
            }
            ReadOnlySpan<byte> name = stack[_tracker.NameStart..];
            if (total >= _minTotal && !name.SequenceEqual(Other))
            {
                ulong x = _cursor[parent];
                _cursor[parent] = x + total;
                Emit(depth, x, total, self, NameIndex(name));
                _kept[depth] = true;
                _cursor[depth] = x + self;
            }
            else
            {
                _other[parent] += total;
                _kept[depth] = false;
            }
        }

        /// <summary>Ends the subtrees of every open node at depth ≥ <paramref name="depth"/>.</summary>
        public void Close(int depth)
        {
            for (int d = _depth; d >= depth; d--)
            {
                if (_kept[d] && _other[d] > 0)
                {
                    ulong x = _cursor[d];
                    _cursor[d] = x + _other[d];
                    Emit(d + 1, x, _other[d], _other[d], NameIndex(Other));
                }
                _other[d] = 0;
                _kept[d] = false;
            }
            _depth = Math.Max(0, depth - 1);
            if (depth == 0) _kept[0] = false;
        }

        private void Emit(int level, ulong x, ulong total, ulong self, int name)
        {
            while (Levels.Count <= level)
            {
                Levels.Add([]);
                _levelEnd.Add(0);
            }
            List<ulong> values = Levels[level];
            values.Add(x - _levelEnd[level]);
            values.Add(total);
            values.Add(self);
            values.Add((ulong)name);
            _levelEnd[level] = x + total;
            if (self > MaxSelf) MaxSelf = self;
        }

        private int NameIndex(ReadOnlySpan<byte> name)
        {
            int max = Encoding.UTF8.GetMaxCharCount(name.Length);
            if (_chars.Length < max) _chars = new char[Math.Max(max, _chars.Length * 2)];
            int n = Encoding.UTF8.GetChars(name, _chars);
            ReadOnlySpan<char> chars = _chars.AsSpan(0, n);
            if (_lookup.TryGetValue(chars, out int index)) return index;
            string s = chars.ToString();
            index = Names.Count;
            Names.Add(s);
            _nameIndex.Add(s, index);
            return index;
        }
    }
}
