using System.Runtime.CompilerServices;
using System.Buffers.Binary;
using System.IO.Hashing;
using ProfileArena.Native;

namespace ProfileArena.Snapshots;

/// <summary>
/// Reads a snapshot from a stream into a new store: node slabs, symbol entries and name chunks are
/// filled by bulk reads straight into freshly allocated native slabs, then everything is validated
/// and the edge indexes and symbol hash table are rebuilt. Any failure frees everything: no partial
/// store is ever returned.
/// </summary>
/// <remarks>
/// Nothing is allocated ahead of the bytes that justify it: slabs (≤ 256 KiB) are allocated one at a
/// time as their bytes arrive, a multi-chunk name run is buffered before its run is allocated, and
/// every table proportional to a count is sized from a section whose bytes have been read.
/// </remarks>
internal static unsafe class SnapshotLoader
{
    private sealed class Input(Stream stream)
    {
        public long Position;
        private readonly long _available = stream.CanSeek ? stream.Length - stream.Position : long.MaxValue;

        public void Read(Span<byte> buffer)
        {
            int done = 0;
            while (done < buffer.Length)
            {
                int n = stream.Read(buffer[done..]);
                if (n == 0) throw SnapshotFormat.Invalid(Position + done, $"the snapshot ends early ({buffer.Length - done} more bytes expected)");
                done += n;
            }
            Position += buffer.Length;
        }

        /// <summary>Reads a section's padding (&lt; 64 bytes), which must be zeros: a file has one valid form.</summary>
        public void SkipPadding(long count)
        {
            Span<byte> scratch = stackalloc byte[SnapshotFormat.BlockSize];
            long at = Position;
            Read(scratch[..(int)count]);
            if (scratch[..(int)count].ContainsAnyExcept((byte)0)) throw SnapshotFormat.Invalid(at, "section padding must be zeros");
        }

        /// <summary>Rejects a declared length the stream cannot hold (seekable streams only), before anything is allocated for it.</summary>
        public void CheckAvailable(long length, long at)
        {
            if (length > _available - Position)
                throw SnapshotFormat.Invalid(at, $"section length {length} runs past the end of the snapshot ({_available} bytes)");
        }
    }

    private struct PendingTree
    {
        public NodeSlabs Nodes;
        public uint Slot, Generation;
        public ulong Total;
        public long PayloadOffset, TotalOffset;
    }

    public static StoreRoot* Load(Stream stream, TreeStoreOptions options)
    {
        var input = new Input(stream);
        StoreRoot* root = StoreRoot.Create(options, internEmptyName: false);
        var pending = new PendingTree[4];
        int pendingCount = 0;
        try
        {
            Span<byte> block = stackalloc byte[SnapshotFormat.BlockSize];
            input.Read(block);
            SnapshotFormat.ParseFileHeader(block);

            var index = new List<(SectionKind, uint, long)>();
            byte[]? trees = null, runBytes = null;
            SectionHeader symbolsHeader = default, treesHeader = default, runsHeader = default, namesHeader = default;
            long namesLength = -1;
            SectionKind last = 0;
            uint symbolCount = 0;
            while (true)
            {
                long at = input.Position;
                input.Read(block);
                SectionHeader h = SectionHeader.Parse(block, at);
                if (h.Kind < last || (h.Kind == last && h.Kind != SectionKind.Nodes))
                    throw SnapshotFormat.Invalid(at + 4, $"section {h.Kind} out of order (after {last})");
                last = h.Kind;
                if (h.Kind != SectionKind.Index) index.Add((h.Kind, h.Slot, at));
                input.CheckAvailable(h.Length, at + 16);
                var hash = new XxHash64();
                switch (h.Kind)
                {
                    case SectionKind.Nodes:
                        if (pendingCount > 0 && h.Slot <= pending[pendingCount - 1].Slot)
                            throw SnapshotFormat.Invalid(at + 8, $"node sections must come by ascending slot ({h.Slot} after {pending[pendingCount - 1].Slot})");
                        if (h.Slot >= int.MaxValue) throw SnapshotFormat.Invalid(at + 8, $"slot {h.Slot} out of range");
                        long count = h.Length / SnapshotFormat.NodeSize;
                        if (count < 1 || count > TreeRecord.MaxNodes) throw SnapshotFormat.Invalid(at + 16, $"a tree of {count} nodes");
                        if (pendingCount == pending.Length) Array.Resize(ref pending, pending.Length * 2);
                        ref PendingTree p = ref pending[pendingCount++];
                        p = new PendingTree { Slot = h.Slot, Generation = h.Generation, Total = h.Aux, PayloadOffset = h.PayloadOffset, TotalOffset = at + 32 };
                        ReadNodes(input, root, ref p.Nodes, (uint)count, hash);
                        break;
                    case SectionKind.Trees:
                        treesHeader = h;
                        trees = ReadSmall(input, h.Length, hash);
                        break;
                    case SectionKind.Symbols:
                        symbolsHeader = h;
                        if (h.Length / SnapshotFormat.SymbolEntrySize >= uint.MaxValue) throw SnapshotFormat.Invalid(at + 16, "too many symbols");
                        symbolCount = (uint)(h.Length / SnapshotFormat.SymbolEntrySize);
                        ReadSymbols(input, root, symbolCount, hash);
                        break;
                    case SectionKind.ChunkRuns:
                        runsHeader = h;
                        if (h.Length / SnapshotFormat.RunEntrySize > ByteArena.MaxChunks) throw SnapshotFormat.Invalid(at + 16, "more name chunks than positions can address");
                        runBytes = ReadSmall(input, h.Length, hash);
                        break;
                    case SectionKind.Names:
                        namesHeader = h;
                        if (runBytes == null) throw SnapshotFormat.Invalid(at, "names before their chunk runs");
                        namesLength = h.Length;
                        ReadNames(input, root, runBytes, runsHeader.PayloadOffset, h, hash);
                        break;
                    case SectionKind.Index:
                        byte[] entries = ReadSmall(input, h.Length, hash);
                        CheckHash(h, hash);
                        CheckIndex(entries, index, h.PayloadOffset);
                        break;
                }
                if (h.Kind != SectionKind.Index) CheckHash(h, hash);
                input.SkipPadding(SnapshotFormat.Pad(h.Length));
                if (h.Kind == SectionKind.Index)
                {
                    long trailerAt = input.Position;
                    input.Read(block);
                    SnapshotFormat.ParseTrailer(block, trailerAt, expectedIndex: at, expectedLength: trailerAt + SnapshotFormat.BlockSize);
                    break;
                }
            }
            if (trees == null || runBytes == null || namesLength < 0 || symbolCount == 0)
                throw SnapshotFormat.Invalid(input.Position, "a required section (trees, symbols, chunk runs, names) is missing");

            // Symbols and names.
            int chunkCount = runBytes.Length / SnapshotFormat.RunEntrySize;
            fixed (byte* runs = runBytes)
            {
                SnapshotValidator.ValidateRuns((uint*)runs, chunkCount, runsHeader.PayloadOffset);
                long nameBytes = SnapshotValidator.ValidateSymbols(ref root->Symbols, symbolCount, (uint*)runs, chunkCount, namesLength, symbolsHeader.PayloadOffset);
                AdoptSymbols(root, symbolCount, nameBytes, symbolsHeader);
            }
            root->Symbols.Arena.SetLoaded(namesLength);
            _ = namesHeader;

            // Trees.
            AdoptTrees(root, trees, treesHeader, pending, ref pendingCount, symbolCount);
            return root;
        }
        catch
        {
            for (int i = 0; i < pendingCount; i++) pending[i].Nodes.Free(&root->Memory);
            StoreRoot.Destroy(root);
            throw;
        }
    }

    private static void CheckHash(in SectionHeader h, XxHash64 hash)
    {
        if (hash.GetCurrentHashAsUInt64() != h.PayloadHash)
            throw SnapshotFormat.Invalid(h.PayloadOffset, $"{h.Kind} section checksum mismatch");
    }

    private static void CheckIndex(byte[] entries, List<(SectionKind Kind, uint Slot, long Offset)> expected, long at)
    {
        if (entries.Length / SnapshotFormat.IndexEntrySize != expected.Count)
            throw SnapshotFormat.Invalid(at, $"the index lists {entries.Length / SnapshotFormat.IndexEntrySize} sections, the file holds {expected.Count}");
        for (int i = 0; i < expected.Count; i++)
        {
            ReadOnlySpan<byte> e = entries.AsSpan(i * SnapshotFormat.IndexEntrySize);
            if ((SectionKind)BinaryPrimitives.ReadUInt32LittleEndian(e) != expected[i].Kind ||
                BinaryPrimitives.ReadUInt32LittleEndian(e[4..]) != expected[i].Slot ||
                BinaryPrimitives.ReadInt64LittleEndian(e[8..]) != expected[i].Offset)
                throw SnapshotFormat.Invalid(at + (long)i * SnapshotFormat.IndexEntrySize, $"index entry {i} does not match the section at {expected[i].Offset}");
        }
    }

    /// <summary>Reads a section into a managed buffer grown as bytes arrive (never sized from the declared length alone).</summary>
    private static byte[] ReadSmall(Input input, long length, XxHash64 hash)
    {
        if (length > int.MaxValue) throw SnapshotFormat.Invalid(input.Position - SnapshotFormat.BlockSize + 16, $"section length {length} too large");
        var buffer = new byte[Math.Min(length, 1 << 16)];
        int done = 0;
        while (done < length)
        {
            if (done == buffer.Length) Array.Resize(ref buffer, (int)Math.Min(length, (long)buffer.Length * 2));
            int n = Math.Min(buffer.Length - done, 1 << 16);
            input.Read(buffer.AsSpan(done, n));
            done += n;
        }
        hash.Append(buffer);
        return buffer;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per load/verify: skip tier 0
    private static void ReadNodes(Input input, StoreRoot* root, ref NodeSlabs nodes, uint count, XxHash64 hash)
    {
        uint done = 0;
        for (int s = 0; done < count; s++)
        {
            nodes.EnsureCapacity(&root->Memory, (ulong)done + 1); // exactly one more slab
            uint items = Math.Min(NodeSlabs.SlabItems(s), count - done);
            var span = new Span<byte>(nodes.Slab(s), (int)items * SnapshotFormat.NodeSize);
            input.Read(span);
            hash.Append(span);
            done += items;
        }
        nodes.Count = count;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per load/verify: skip tier 0
    private static void ReadSymbols(Input input, StoreRoot* root, uint count, XxHash64 hash)
    {
        ref SlabList<SymbolEntry> entries = ref root->Symbols.Entries;
        uint done = 0;
        for (int s = 0; done < count; s++)
        {
            entries.EnsureCapacity(&root->Memory, (ulong)done + 1);
            uint items = Math.Min(SlabList<SymbolEntry>.SlabItems(s), count - done);
            var span = new Span<byte>(entries.Slab(s), (int)items * SnapshotFormat.SymbolEntrySize);
            input.Read(span);
            hash.Append(span);
            done += items;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per load/verify: skip tier 0
    private static void ReadNames(Input input, StoreRoot* root, byte[] runBytes, long runsAt, in SectionHeader h, XxHash64 hash)
    {
        int chunkCount = runBytes.Length / SnapshotFormat.RunEntrySize;
        fixed (byte* runs = runBytes) SnapshotValidator.ValidateRuns((uint*)runs, chunkCount, runsAt);
        SnapshotFormat.CheckNamesLength(h.Length, chunkCount, h.Offset + 16);
        ref ByteArena arena = ref root->Symbols.Arena;
        long done = 0;
        for (int c = 0; c < chunkCount; )
        {
            int run = (int)BinaryPrimitives.ReadUInt32LittleEndian(runBytes.AsSpan(c * 4));
            long bytes = Math.Min(h.Length - done, (long)run << ByteArena.ChunkShift);
            if (bytes <= 0)
            {
                arena.AppendRun(&root->Memory, run); // chunks past the high-water mark hold no name
            }
            else if (run == 1)
            {
                var span = new Span<byte>(arena.AppendRun(&root->Memory, 1), (int)bytes);
                input.Read(span);
                hash.Append(span);
            }
            else
            {
                // Buffer a long name's run before allocating it: the bytes must exist first.
                var parts = new List<byte[]>();
                for (long left = bytes; left > 0;)
                {
                    var part = new byte[Math.Min(left, ByteArena.ChunkBytes)];
                    input.Read(part);
                    hash.Append(part);
                    parts.Add(part);
                    left -= part.Length;
                }
                byte* p = arena.AppendRun(&root->Memory, run);
                foreach (var part in parts)
                {
                    part.CopyTo(new Span<byte>(p, part.Length));
                    p += part.Length;
                }
            }
            done += Math.Max(bytes, 0);
            c += run;
        }
    }

    /// <summary>Every chunk holds the start of a name, so the saved bytes reach into the last chunk: this
    /// bounds the chunks (64 KiB each) by the bytes actually present.</summary>
    public static void AdoptSymbols(StoreRoot* root, uint count, long nameBytes, in SectionHeader h, bool index = true)
    {
        if ((ulong)nameBytes != h.Aux) throw SnapshotFormat.Invalid(h.Offset + 32, $"the header says {h.Aux} name bytes, the entries hold {nameBytes}");
        if (nameBytes > root->MaxSymbolBytes)
            throw new StoreLimitExceededException(StoreLimit.SymbolBytes, root->MaxSymbolBytes,
                $"the snapshot holds {nameBytes} bytes of frame names, over TreeStoreOptions.MaxSymbolBytes = {root->MaxSymbolBytes}");
        long duplicate = root->Symbols.AdoptLoaded(&root->Memory, count, nameBytes, index);
        if (duplicate >= 0)
            throw SnapshotFormat.Invalid(h.PayloadOffset + duplicate * SnapshotFormat.SymbolEntrySize, $"symbol {duplicate} repeats an earlier name");
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per load/verify: skip tier 0
    private static void AdoptTrees(StoreRoot* root, byte[] trees, in SectionHeader h, PendingTree[] pending, ref int pendingCount, uint symbolCount)
    {
        int slots = trees.Length / SnapshotFormat.TreeEntrySize;
        var sections = new SnapshotFormat.TreeSection[pendingCount];
        for (int i = 0; i < pendingCount; i++) sections[i] = new(pending[i].Slot, pending[i].Nodes.Count, pending[i].Generation);
        long nodeTotal = SnapshotFormat.CheckTreeTable(trees, h.PayloadOffset, sections, root->MaxNodes);

        if (slots > 0) root->Trees.EnsureCapacity(&root->Memory, (ulong)slots);
        int next = 0;
        for (int slot = 0; slot < slots; slot++)
        {
            TreeRecord* tree = root->Trees[(uint)slot];
            *tree = default;
            tree->Generation = BinaryPrimitives.ReadUInt32LittleEndian(trees.AsSpan(slot * SnapshotFormat.TreeEntrySize + 4));
            root->TreeCount = (uint)slot + 1; // from here Destroy frees this record
            if (next < pendingCount && pending[next].Slot == slot)
            {
                ref PendingTree p = ref pending[next];
                tree->Nodes = p.Nodes;
                p.Nodes = default;
                next++;
                tree->Total = p.Total;
                tree->Live = 1;
                SnapshotValidator.ValidateTree(root, ref tree->Nodes, tree->Nodes.Count, tree->Total, p.PayloadOffset, p.TotalOffset);
                tree->Edges.EnsureCapacity(&root->Memory, ref tree->Nodes, tree->Nodes.Count, tree->Nodes.Count);
                SnapshotValidator.ValidateDistinctSiblings(tree, p.PayloadOffset);
                root->LiveTrees++;
            }
        }
        for (int slot = slots - 1; slot >= 0; slot--)
        {
            TreeRecord* tree = root->Trees[(uint)slot];
            if (tree->Live != 0) continue;
            tree->NextFree = root->FreeTreeHead;
            root->FreeTreeHead = (uint)slot + 1;
        }
        root->NodeCount = nodeTotal;
        pendingCount = 0;
    }
}
