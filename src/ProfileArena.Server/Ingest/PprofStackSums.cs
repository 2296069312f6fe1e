using System.IO.Hashing;
using System.Numerics;
using System.Runtime.CompilerServices;
using ProfileArena.Formats;
using ProfileArena.Server.Buffers;
using ProfileArena.Server.Http;
using ProfileArena.Server.Storage;

namespace ProfileArena.Server.Ingest;

/// <summary>
/// The sink of an ingest request's pprof samples: per sample type, the distinct stacks with their values summed,
/// written straight into the <see cref="StackBatch"/> the request stores. It replaces a staging tree per sample type
/// (every sample inserted into a <see cref="TreeStore"/>, the trees then iterated back into batches: as costly as
/// the parse itself) and gives what those trees gave: the same (stack, sum) pairs — in first-seen order rather than
/// tree order — and the same refusals, in the same order, with the same messages: a negative value and a sample
/// type's values adding up past 2^64 − 1 (400), and more than <c>maxNodes</c> call-tree nodes
/// (<see cref="StoreLimitExceededException"/>, which the decoder answers with 413), counted as the staging store
/// counted them: one root per sample type, and per sample type every distinct stack prefix ending at a ';' or at
/// the stack's end (a node path; empty frames are nodes too, as <see cref="ProfileTree.Insert(ReadOnlySpan{byte}, ulong)"/> keeps them).
/// </summary>
/// <remarks>Counting nodes exactly means a set of every prefix — as much work as the tree was. So the count starts as
/// a bound: the roots plus the frames of every distinct stack (no stack has more new nodes than frames). While that
/// bound is within the limit, so is the exact count, and a sample costs one hash of its stack and one lookup in its
/// type's table of distinct stacks. Once a new stack would take the bound past the limit, every table is rebuilt as
/// a table of nodes (the stacks so far, split at their ';': the exact count the trees had at this sample) and the
/// rest of the profile is counted exactly: the refusal comes at the sample, with the numbers, the tree gave. The
/// tables come from a bounded pool (a thousand-stack push's table is past the Large Object Heap threshold).</remarks>
public sealed class PprofStackSums(long maxNodes) : IPprofSampleSink, IDisposable
{
    private static readonly RetainingArrayPool<Node> s_tables =
        new(IngestPools.ArraysPerSize, IngestPools.MaxRetainedBytes / Unsafe.SizeOf<Node>(), IngestPools.PoolBytes);

    private PerType[] _types = [];
    private long _nodes, _sample;
    private bool _exact;
    private ulong[] _prefixHashes = IngestPools.ULongs.Rent(64);
    private int[] _prefixEnds = IngestPools.Ints.Rent(64);
    private bool _taken;

    /// <summary>The profile's sample types, in order (empty before <see cref="Begin"/>).</summary>
    public IReadOnlyList<PprofValueType> Types { get; private set; } = [];

    /// <inheritdoc/>
    public void Begin(PprofProfileInfo info)
    {
        Types = info.SampleTypes;
        _types = new PerType[info.SampleTypes.Count];
        for (int i = 0; i < _types.Length; i++)
        {
            long after = _nodes + 1;
            if (after > maxNodes)
                throw new StoreLimitExceededException(StoreLimit.Nodes, maxNodes, $"a new tree's root would take the store to {after} nodes, over TreeStoreOptions.MaxNodes = {maxNodes}");
            _nodes = after;
            _types[i] = new PerType();
        }
    }

    /// <inheritdoc/>
    public void Sample(ReadOnlySpan<byte> stack, ReadOnlySpan<long> values)
    {
        _sample++;
        int depth = -1;
        for (int i = 0; i < values.Length && i < _types.Length; i++)
        {
            long v = values[i];
            if (v < 0) throw RequestException.BadRequest($"profile (pprof): sample {_sample} has a negative {Types[i]} value ({v}); diff profiles are not accepted");
            if (v == 0) continue;
            PerType type = _types[i];
            if (type.Batch.Total > ulong.MaxValue - (ulong)v)
                throw RequestException.BadRequest($"profile (pprof): the {Types[i]} values add up past 2^64 − 1 at sample {_sample}");
            if (!_exact && type.TryAddBounded(this, stack, (ulong)v)) continue;
            if (!_exact) CountExactly();
            if (depth < 0) depth = SplitPrefixes(stack);
            type.AddExact(this, stack, _prefixHashes.AsSpan(0, depth), _prefixEnds.AsSpan(0, depth), (ulong)v);
        }
    }

    /// <summary>Each sample type with its stacks; the caller owns (disposes) the batches from here on.</summary>
    /// <exception cref="InvalidOperationException">Called twice.</exception>
    public List<(PprofValueType Type, StackBatch Stacks)> TakeSeries()
    {
        if (_taken) throw new InvalidOperationException("the series were taken already");
        _taken = true;
        var series = new List<(PprofValueType, StackBatch)>(_types.Length);
        for (int i = 0; i < _types.Length; i++) series.Add((Types[i], _types[i].Batch));
        return series;
    }

    /// <summary>Returns the tables to their pool, and the batches too unless <see cref="TakeSeries"/> handed them out.</summary>
    public void Dispose()
    {
        foreach (PerType? t in _types) t?.Dispose(disposeBatch: !_taken); // null past a root Begin refused
        _types = [];
        if (_prefixHashes.Length > 0) IngestPools.ULongs.Return(_prefixHashes);
        if (_prefixEnds.Length > 0) IngestPools.Ints.Return(_prefixEnds);
        _prefixHashes = [];
        _prefixEnds = [];
    }

    /// <summary>Splits <paramref name="stack"/> at its ';': per frame, where the path to it ends and the path's hash
    /// (each frame's hash folded into its parent's). Returns the number of frames (at least 1: "" is one empty frame).</summary>
    private int SplitPrefixes(ReadOnlySpan<byte> stack)
    {
        int depth = 0, position = 0;
        ulong hash = 0x243F6A8885A308D3;
        while (true)
        {
            int separator = stack[position..].IndexOf((byte)';');
            int end = separator < 0 ? stack.Length : position + separator;
            hash = (BitOperations.RotateLeft(hash, 23) ^ XxHash3.HashToUInt64(stack[position..end])) * 0x9E3779B97F4A7C15;
            if (depth == _prefixEnds.Length)
            {
                IngestPools.Ints.Grow(ref _prefixEnds, depth, depth * 2);
                IngestPools.ULongs.Grow(ref _prefixHashes, depth, depth * 2);
            }
            _prefixEnds[depth] = end;
            _prefixHashes[depth] = hash;
            depth++;
            if (separator < 0) return depth;
            position = end + 1;
        }
    }

    /// <summary>Counts a new distinct stack of <paramref name="frames"/> frames into the bound; false (nothing
    /// counted) when the bound would pass the limit.</summary>
    private bool TryClaimBound(int frames)
    {
        if (frames > maxNodes - _nodes) return false;
        _nodes += frames;
        return true;
    }

    /// <summary>From the bound to the exact count: every sample type's table rebuilt as a table of nodes.</summary>
    private void CountExactly()
    {
        _exact = true;
        _nodes = _types.Length;
        foreach (PerType type in _types) _nodes += type.RebuildAsNodes(this);
    }

    /// <summary>Claims <paramref name="created"/> nodes within the limit, or refuses as the staging store refused.</summary>
    private void ClaimNodes(int created)
    {
        long after = _nodes + created;
        if (after > maxNodes)
            throw new StoreLimitExceededException(StoreLimit.Nodes, maxNodes, $"{created} new nodes would take the store to {after} nodes, over TreeStoreOptions.MaxNodes = {maxNodes}");
        _nodes = after;
    }

    /// <summary>One node of a sample type's tree. <see cref="StackPlusOne"/> − 1 (StackPlusOne 0: a free slot) is a batch stack whose first
    /// <see cref="Length"/> bytes are the node's path; <see cref="Value"/> the batch index of the path's own value, or −1.</summary>
    private struct Node
    {
        public ulong Hash;
        public int StackPlusOne;
        public int Length;
        public int Value;
    }

    /// <summary>One sample type: its batch and its node table.</summary>
    private sealed class PerType
    {
        private Node[] _table;
        private int _count, _mask;

        public PerType()
        {
            _table = s_tables.Rent(1024);
            _mask = (int)BitOperations.RoundUpToPowerOf2((uint)_table.Length + 1) / 2 - 1;
            _table.AsSpan(0, _mask + 1).Clear();
        }

        /// <summary>The distinct stacks with their sums; its <see cref="StackBatch.Total"/> is the type's sum, exact
        /// because a sample that would take it past 2^64 − 1 is refused before it is added.</summary>
        public StackBatch Batch { get; } = new();

        /// <summary>While nodes are only bounded: adds one sample's value (checked by the caller: positive, total within
        /// 2^64 − 1) to its stack, a new stack when its frames fit the bound; false, nothing changed, when they do not.</summary>
        public bool TryAddBounded(PprofStackSums owner, ReadOnlySpan<byte> stack, ulong value)
        {
            ulong hash = XxHash3.HashToUInt64(stack);
            int slot = Find(hash, stack);
            if (_table[slot].StackPlusOne != 0)
            {
                Batch.AddToValue(_table[slot].Value, value);
                return true;
            }
            if (!owner.TryClaimBound(stack.Count((byte)';') + 1)) return false;
            if ((_count + 1) * 2L > _mask + 1L)
            {
                Grow(_count + 1);
                slot = Find(hash, stack);
            }
            _table[slot] = new Node { Hash = hash, StackPlusOne = Batch.Count + 1, Length = stack.Length, Value = Batch.Count };
            _count++;
            Batch.Add(stack, value);
            return true;
        }

        /// <summary>Replaces the table of distinct stacks by the table of their nodes; returns the number of nodes
        /// (the tree's, without its root).</summary>
        public int RebuildAsNodes(PprofStackSums owner)
        {
            _table.AsSpan(0, _mask + 1).Clear();
            _count = 0;
            for (int i = 0; i < Batch.Count; i++)
            {
                ReadOnlySpan<byte> stack = Batch.Stack(i);
                int depth = owner.SplitPrefixes(stack);
                ReadOnlySpan<ulong> hashes = owner._prefixHashes.AsSpan(0, depth);
                ReadOnlySpan<int> ends = owner._prefixEnds.AsSpan(0, depth);
                Insert(stack, hashes, ends, i, KnownPrefixes(stack, hashes, ends));
            }
            return _count;
        }

        /// <summary>While nodes are counted exactly: adds one sample's value (checked by the caller) and the nodes its stack creates.</summary>
        public void AddExact(PprofStackSums owner, ReadOnlySpan<byte> stack, ReadOnlySpan<ulong> hashes, ReadOnlySpan<int> ends, ulong value)
        {
            int depth = hashes.Length;
            int slot = Find(hashes[depth - 1], stack);
            if (_table[slot].StackPlusOne != 0)
            {
                ref Node node = ref _table[slot];
                if (node.Value >= 0) Batch.AddToValue(node.Value, value);
                else
                {
                    node.Value = Batch.Count;
                    Batch.Add(stack, value);
                }
                return;
            }
            int known = KnownPrefixes(stack, hashes, ends);
            owner.ClaimNodes(depth - known);
            Batch.Add(stack, value); // first: the new nodes' bytes are this batch stack's
            Insert(stack, hashes, ends, Batch.Count - 1, known);
        }

        /// <summary>How many of the stack's prefixes (shortest first) are nodes already: a prefix of a node is one too.</summary>
        private int KnownPrefixes(ReadOnlySpan<byte> stack, ReadOnlySpan<ulong> hashes, ReadOnlySpan<int> ends)
        {
            int known = hashes.Length;
            while (known > 0 && _table[Find(hashes[known - 1], stack[..ends[known - 1]])].StackPlusOne == 0) known--;
            return known;
        }

        /// <summary>Makes the stack's missing path nodes (all but its first <paramref name="known"/> prefixes) with batch
        /// stack <paramref name="index"/> (already added) as their bytes, and gives its own node the value at <paramref name="index"/>.</summary>
        private void Insert(ReadOnlySpan<byte> stack, ReadOnlySpan<ulong> hashes, ReadOnlySpan<int> ends, int index, int known)
        {
            int depth = hashes.Length;
            if (known == depth)
            {
                _table[Find(hashes[depth - 1], stack)].Value = index;
                return;
            }
            if ((_count + depth - known) * 2L > _mask + 1L) Grow(_count + depth - known);
            for (int k = known; k < depth; k++)
            {
                ref Node node = ref _table[Find(hashes[k], stack[..ends[k]])];
                node = new Node { Hash = hashes[k], StackPlusOne = index + 1, Length = ends[k], Value = k == depth - 1 ? index : -1 };
                _count++;
            }
        }

        /// <summary>The slot of the node whose path is <paramref name="path"/>, or the free slot where it belongs.</summary>
        private int Find(ulong hash, ReadOnlySpan<byte> path)
        {
            int slot = (int)(hash >> 33) & _mask;
            while (true)
            {
                ref Node node = ref _table[slot];
                if (node.StackPlusOne == 0) return slot;
                if (node.Hash == hash && node.Length == path.Length && Batch.Stack(node.StackPlusOne - 1)[..path.Length].SequenceEqual(path)) return slot;
                slot = (slot + 1) & _mask;
            }
        }

        /// <summary>Doubles the table until <paramref name="needed"/> entries fill at most half of it.</summary>
        private void Grow(long needed)
        {
            Node[] old = _table;
            int oldSize = _mask + 1;
            long size = oldSize;
            while (needed * 2 > size) size *= 2;
            if (size > Array.MaxLength) throw new InvalidOperationException("a sample type's node table would pass 2^31 entries");
            _table = s_tables.Rent((int)size);
            _mask = (int)size - 1;
            _table.AsSpan(0, (int)size).Clear();
            for (int i = 0; i < oldSize; i++)
            {
                if (old[i].StackPlusOne == 0) continue;
                int slot = (int)(old[i].Hash >> 33) & _mask;
                while (_table[slot].StackPlusOne != 0) slot = (slot + 1) & _mask;
                _table[slot] = old[i];
            }
            s_tables.Return(old);
        }

        public void Dispose(bool disposeBatch)
        {
            if (_table.Length > 0) s_tables.Return(_table);
            _table = [];
            if (disposeBatch) Batch.Dispose();
        }
    }
}
