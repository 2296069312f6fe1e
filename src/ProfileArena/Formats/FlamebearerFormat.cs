using System.Text;
using System.Text.Json;

namespace ProfileArena.Formats;

/// <summary>Options of <see cref="FlamebearerFormat.Export(ProfileTree, Stream, FlamebearerOptions?)"/>
/// and <see cref="FlamebearerFormat.ExportDiff(ProfileTree, ProfileTree, Stream, FlamebearerOptions?)"/>.</summary>
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

    /// <summary>metadata.spyName (default empty).</summary>
    public string SpyName { get; init; } = "";

    /// <summary>The profile's timeline (pyroscope's <c>timeline</c> object), written when <see cref="WriteTimeline"/> is set.</summary>
    public FlamebearerTimeline? Timeline { get; init; }

    /// <summary>Writes the <c>timeline</c> key (null when <see cref="Timeline"/> is null), as pyroscope's render API does.</summary>
    public bool WriteTimeline { get; init; }
}

/// <summary>pyroscope's timeline: one sample sum per step of <paramref name="DurationDelta"/> seconds from <paramref name="StartTime"/>.</summary>
/// <param name="StartTime">Unix seconds of the first step.</param>
/// <param name="DurationDelta">Seconds per step.</param>
/// <param name="Samples">The sum of each step.</param>
public sealed record FlamebearerTimeline(long StartTime, long DurationDelta, IReadOnlyList<long> Samples);

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
    /// <summary>Writes the tree as flamebearer JSON, format "single", to <paramref name="output"/> (not closed).</summary>
    public static void Export(ProfileTree tree, Stream output, FlamebearerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        options ??= new FlamebearerOptions();
        ulong rootTotal = tree.Total;
        LevelsBuilder builder = LevelsBuilder.Rent(1, MinTotal(tree, options.MaxNodes), [rootTotal]);
        var visitor = new SingleVisitor(builder);
        tree.Iterate(ref visitor);
        builder.Close(0);
        Write(output, builder, "single", rootTotal, null, options);
        builder.Return();
    }

    /// <summary>
    /// Writes the difference of two trees as flamebearer JSON, format "double" (pyroscope's diff view):
    /// each node is 7 integers <c>[left x delta, left total, left self, right x delta, right total,
    /// right self, name index]</c> over the union of both trees' paths (a path missing on one side has
    /// 0 there); <c>numTicks</c> is the sum of both totals, <c>leftTicks</c>/<c>rightTicks</c> each side's.
    /// With <see cref="FlamebearerOptions.MaxNodes"/> = K the threshold is the K-th largest
    /// max(left total, right total); a node under it on both sides folds into its parent's "other".
    /// Neither tree is changed.
    /// </summary>
    public static void ExportDiff(ProfileTree left, ProfileTree right, Stream output, FlamebearerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        options ??= new FlamebearerOptions();
        ulong leftTotal = left.Total, rightTotal = right.Total;
        // Both sides grown to the union of the two shapes (missing paths inserted with value 0) in a
        // private store: one pre-order walk then meets the same paths in the same order on both sides.
        using var staging = new TreeStore();
        ProfileTree l = staging.CreateTree(), r = staging.CreateTree();
        l.MergeFrom(left);
        r.MergeFrom(right);
        AddShape(l, right);
        AddShape(r, left);
        var rightNodes = new ColumnVisitor([], [], []);
        r.Iterate(ref rightNodes);
        var leftNodes = new ColumnVisitor([], [], null);
        l.Iterate(ref leftNodes);
        if (leftNodes.Totals.Count != rightNodes.Totals.Count)
            throw new InvalidOperationException("diff: the two union trees differ in shape");
        var weights = new List<ulong>(leftNodes.Totals.Count);
        for (int i = 0; i < leftNodes.Totals.Count; i++) weights.Add(Math.Max(leftNodes.Totals[i], rightNodes.Totals[i]));
        LevelsBuilder builder = LevelsBuilder.Rent(2, KthLargest(weights, options.MaxNodes), [leftTotal, rightTotal]);
        var visitor = new DiffVisitor(builder, rightNodes);
        l.Iterate(ref visitor);
        builder.Close(0);
        Write(output, builder, "double", leftTotal + rightTotal, (leftTotal, rightTotal), options);
        builder.Return();
    }

    private static void AddShape(ProfileTree target, ProfileTree shape)
    {
        var paths = new List<byte[]>();
        shape.Iterate((stack, _, _) => paths.Add(stack.ToArray()));
        foreach (byte[] path in paths) target.Insert(path, 0);
    }

    /// <summary>Bytes the JSON writer may hold before they go to the output stream.</summary>
    private const int SpillBytes = 16 << 10;

    private static void Write(Stream output, LevelsBuilder builder, string format, ulong numTicks, (ulong Left, ulong Right)? ticks, FlamebearerOptions options)
    {
        // Utf8JsonWriter keeps everything not yet flushed in one buffer that doubles as it fills: a flamebearer of a
        // thousand long frame names (or a day's timeline) would take it past the Large Object Heap threshold at every
        // export. Spilling to the stream every SpillBytes keeps that buffer small and reused.
        Utf8JsonWriter json = builder.JsonWriter(output);
        json.WriteStartObject();
        json.WriteNumber("version", 1);
        json.WriteStartObject("flamebearer");
        json.WriteStartArray("names");
        for (int i = 0; i < builder.NameCount; i++)
        {
            json.WriteStringValue(builder.Name(i));
            Spill(json);
        }
        json.WriteEndArray();
        json.WriteStartArray("levels");
        for (int l = 0; l < builder.LevelCount; l++)
        {
            json.WriteStartArray();
            foreach (ulong v in builder.Level(l))
            {
                json.WriteNumberValue(v);
                Spill(json);
            }
            json.WriteEndArray();
        }
        json.WriteEndArray();
        json.WriteNumber("numTicks", numTicks);
        json.WriteNumber("maxSelf", builder.MaxSelf);
        json.WriteEndObject();
        json.WriteStartObject("metadata");
        json.WriteString("format", format);
        json.WriteString("spyName", options.SpyName);
        json.WriteNumber("sampleRate", options.SampleRate);
        json.WriteString("units", options.Units);
        json.WriteString("name", options.Name);
        json.WriteEndObject();
        if (options.WriteTimeline)
        {
            if (options.Timeline is null)
            {
                json.WriteNull("timeline");
            }
            else
            {
                json.WriteStartObject("timeline");
                json.WriteNumber("startTime", options.Timeline.StartTime);
                json.WriteStartArray("samples");
                foreach (long v in options.Timeline.Samples)
                {
                    json.WriteNumberValue(v);
                    Spill(json);
                }
                json.WriteEndArray();
                json.WriteNumber("durationDelta", options.Timeline.DurationDelta);
                json.WriteStartObject("watermarks");
                json.WriteEndObject();
                json.WriteEndObject();
            }
        }
        if (ticks is var (leftTicks, rightTicks))
        {
            json.WriteNumber("leftTicks", leftTicks);
            json.WriteNumber("rightTicks", rightTicks);
        }
        json.WriteEndObject();
        json.Flush();
    }

    private static void Spill(Utf8JsonWriter json)
    {
        if (json.BytesPending >= SpillBytes) json.Flush();
    }

    /// <summary>The K-th largest total among all nodes but the root; 0 when the tree has at most K nodes.</summary>
    private static ulong MinTotal(ProfileTree tree, int maxNodes)
    {
        if (maxNodes <= 0 || tree.NodeCount - 1 <= maxNodes) return 0;
        var top = new TopTotals(maxNodes);
        tree.Iterate(ref top);
        return top.Min;
    }

    private static ulong KthLargest(List<ulong> values, int k)
    {
        if (k <= 0 || values.Count <= k) return 0;
        var top = new TopTotals(k);
        foreach (ulong v in values) top.Visit(default, 0, v);
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

    private readonly struct SingleVisitor(LevelsBuilder builder) : IStackVisitor
    {
        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total) =>
            builder.Visit(stack, new ReadOnlySpan<ulong>(in self), new ReadOnlySpan<ulong>(in total), total);
    }

    /// <summary>Collects one side's values in pre-order (and, when <c>Hashes</c> is given, a hash of each
    /// path, to check that the other side walks the same paths).</summary>
    private readonly struct ColumnVisitor(List<ulong> selfs, List<ulong> totals, List<ulong>? hashes) : IStackVisitor
    {
        public List<ulong> Selfs => selfs;
        public List<ulong> Totals => totals;
        public List<ulong>? Hashes => hashes;

        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
        {
            selfs.Add(self);
            totals.Add(total);
            hashes?.Add(System.IO.Hashing.XxHash3.HashToUInt64(stack));
        }
    }

    private struct DiffVisitor(LevelsBuilder builder, ColumnVisitor right) : IStackVisitor
    {
        private int _index;

        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
        {
            int i = _index++;
            if (right.Hashes![i] != System.IO.Hashing.XxHash3.HashToUInt64(stack))
                throw new InvalidOperationException("diff: the two union trees walk different paths");
            ReadOnlySpan<ulong> selfs = [self, right.Selfs[i]], totals = [total, right.Totals[i]];
            builder.Visit(stack, selfs, totals, Math.Max(total, right.Totals[i]));
        }
    }

    private static ReadOnlySpan<byte> Other => "other"u8;

    /// <summary>Builds the levels of one or two sides in one pre-order pass: a node's x on each side is
    /// known when it is visited (parent x + parent self + totals of earlier kept siblings), and a
    /// parent's "other" child is emitted when its subtree closes, after its kept children.</summary>
    /// <remarks>One per thread is kept between exports (<see cref="Rent"/>, <see cref="Return"/>; an export runs on one
    /// thread from start to end): a server answers every render with one, and its lists, name table and names — as
    /// chars in one buffer, never strings — were most of what the server allocated under load (perf/README, "Ninth
    /// session"). One that grew past <see cref="MaxRetainedValues"/> is dropped, not kept.</remarks>
    private sealed class LevelsBuilder
    {
        private const int MaxSides = 2, MaxRetainedValues = 1 << 20;

        [ThreadStatic]
        private static LevelsBuilder? t_cached;

        private int _sides;
        private ulong _minTotal;
        private readonly List<List<ulong>> _levels = [];
        private int _levelCount, _values;
        private readonly List<ulong[]> _cursor = [], _other = [], _levelEnd = [];
        private readonly List<bool> _kept = [];
        private readonly ulong[] _x = new ulong[MaxSides], _zeros = new ulong[MaxSides];
        private readonly StackDepthTracker _tracker = new();
        private int _depth;
        // Names: their chars one after another in _nameChars, each at _names[i]; _nameSlots maps a name's hash to its
        // first index, _sameHash chains the others with that hash (−1 ends a chain).
        private char[] _nameChars = new char[4096];
        private int _nameCharCount;
        private readonly List<(int Start, int Length)> _names = [];
        private readonly Dictionary<ulong, int> _nameSlots = [];
        private readonly List<int> _sameHash = [];
        private Utf8JsonWriter? _json;

        /// <summary>The builder's JSON writer, reset to write to <paramref name="output"/> (its buffer kept between exports).</summary>
        public Utf8JsonWriter JsonWriter(Stream output)
        {
            if (_json is null) _json = new Utf8JsonWriter(output);
            else _json.Reset(output);
            return _json;
        }

        /// <summary>A builder of <paramref name="sides"/> (1 or 2) sides, this thread's kept one if any.</summary>
        public static LevelsBuilder Rent(int sides, ulong minTotal, ReadOnlySpan<ulong> rootTotals)
        {
            LevelsBuilder builder = t_cached ?? new LevelsBuilder();
            t_cached = null;
            builder.Reset(sides, minTotal, rootTotals);
            return builder;
        }

        /// <summary>Keeps this builder for the thread's next export (unless it grew too large); not used after.</summary>
        public void Return()
        {
            _json?.Reset(Stream.Null); // no reference to the caller's stream is kept
            if (_values <= MaxRetainedValues && _nameChars.Length <= MaxRetainedValues) t_cached = this;
        }

        private void Reset(int sides, ulong minTotal, ReadOnlySpan<ulong> rootTotals)
        {
            _sides = sides;
            _minTotal = minTotal;
            MaxSelf = 0;
            _levelCount = _values = _depth = 0;
            foreach (ulong[] a in _cursor) Array.Clear(a);
            foreach (ulong[] a in _other) Array.Clear(a);
            for (int i = 0; i < _kept.Count; i++) _kept[i] = false;
            _tracker.Reset();
            _nameCharCount = 0;
            _names.Clear();
            _nameSlots.Clear();
            _sameHash.Clear();
            NameIndex("total"u8);
            Grow(0);
            _kept[0] = true;
            Emit(0, _zeros, rootTotals, _zeros, 0);
        }

        public int NameCount => _names.Count;

        /// <summary>Name <paramref name="index"/>'s chars (valid until the next name is added).</summary>
        public ReadOnlySpan<char> Name(int index)
        {
            var (start, length) = _names[index];
            return _nameChars.AsSpan(start, length);
        }

        public int LevelCount => _levelCount;

        public List<ulong> Level(int index) => _levels[index];

        public ulong MaxSelf { get; private set; }

        /// <summary>One node; <paramref name="weight"/> is what the fold threshold is compared with.</summary>
        public void Visit(ReadOnlySpan<byte> stack, ReadOnlySpan<ulong> self, ReadOnlySpan<ulong> total, ulong weight)
        {
            int depth = _tracker.Next(stack);
            Close(depth);
            int parent = depth - 1;
            Grow(depth);
            _depth = depth;
            Array.Clear(_other[depth]);
            if (!_kept[parent])
            {
                _kept[depth] = false;
                return;
            }
            ReadOnlySpan<byte> name = stack[_tracker.NameStart..];
            if (weight >= _minTotal && !name.SequenceEqual(Other))
            {
                for (int s = 0; s < _sides; s++)
                {
                    _x[s] = _cursor[parent][s];
                    _cursor[parent][s] = _x[s] + total[s];
                    _cursor[depth][s] = _x[s] + self[s];
                }
                Emit(depth, _x, total, self, NameIndex(name));
                _kept[depth] = true;
            }
            else
            {
                for (int s = 0; s < _sides; s++) _other[parent][s] += total[s];
                _kept[depth] = false;
            }
        }

        /// <summary>Ends the subtrees of every open node at depth ≥ <paramref name="depth"/>.</summary>
        public void Close(int depth)
        {
            for (int d = _depth; d >= depth; d--)
            {
                ulong[] other = _other[d];
                if (_kept[d] && other.AsSpan().ContainsAnyExcept(0UL))
                {
                    for (int s = 0; s < _sides; s++)
                    {
                        _x[s] = _cursor[d][s];
                        _cursor[d][s] = _x[s] + other[s];
                    }
                    Emit(d + 1, _x, other, other, NameIndex(Other));
                }
                Array.Clear(other);
                _kept[d] = false;
            }
            _depth = Math.Max(0, depth - 1);
            if (depth == 0) _kept[0] = false;
        }

        private void Grow(int depth)
        {
            while (_cursor.Count <= depth)
            {
                _cursor.Add(new ulong[MaxSides]);
                _other.Add(new ulong[MaxSides]);
                _kept.Add(false);
            }
        }

        private void Emit(int level, ReadOnlySpan<ulong> x, ReadOnlySpan<ulong> total, ReadOnlySpan<ulong> self, int name)
        {
            while (_levelCount <= level)
            {
                if (_levels.Count == _levelCount)
                {
                    _levels.Add([]);
                    _levelEnd.Add(new ulong[MaxSides]);
                }
                _levels[_levelCount].Clear();
                Array.Clear(_levelEnd[_levelCount]);
                _levelCount++;
            }
            List<ulong> values = _levels[level];
            ulong[] end = _levelEnd[level];
            for (int s = 0; s < _sides; s++)
            {
                values.Add(x[s] - end[s]);
                values.Add(total[s]);
                values.Add(self[s]);
                end[s] = x[s] + total[s];
                if (self[s] > MaxSelf) MaxSelf = self[s];
            }
            values.Add((ulong)name);
            _values += 3 * _sides + 1;
        }

        /// <summary>The index of <paramref name="name"/> (UTF-8; invalid bytes become U+FFFD), added when new.</summary>
        private int NameIndex(ReadOnlySpan<byte> name)
        {
            int max = Encoding.UTF8.GetMaxCharCount(name.Length);
            if (_nameChars.Length - _nameCharCount < max)
                Array.Resize(ref _nameChars, Math.Max(_nameCharCount + max, _nameChars.Length * 2));
            Span<char> chars = _nameChars.AsSpan(_nameCharCount);
            chars = chars[..Encoding.UTF8.GetChars(name, chars)];
            ulong hash = System.IO.Hashing.XxHash3.HashToUInt64(System.Runtime.InteropServices.MemoryMarshal.AsBytes((ReadOnlySpan<char>)chars));
            ref int first = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_nameSlots, hash, out bool seen);
            if (seen)
            {
                for (int i = first; i >= 0; i = _sameHash[i])
                {
                    var (start, length) = _names[i];
                    if (_nameChars.AsSpan(start, length).SequenceEqual(chars)) return i;
                }
            }
            int index = _names.Count;
            _names.Add((_nameCharCount, chars.Length));
            _sameHash.Add(seen ? first : -1);
            first = index;
            _nameCharCount += chars.Length;
            return index;
        }
    }
}
