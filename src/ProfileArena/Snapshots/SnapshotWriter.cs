using System.Buffers.Binary;
using System.IO.Hashing;
using ProfileArena.Engine;
using ProfileArena.Native;

namespace ProfileArena.Snapshots;

/// <summary>
/// Writes a store as a snapshot: every live tree's node slabs, the tree table, the symbol entries,
/// chunk runs and name bytes, all as bulk copies of native memory (hashed, then written).
/// </summary>
/// <remarks>
/// Each tree is written under its own read lock, so it is a consistent state of that tree; the store
/// as a whole is not frozen (writers on other trees go on). Symbols are captured after the trees:
/// they are append-only, so every id a saved node names is below the captured count.
/// </remarks>
internal static unsafe class SnapshotWriter
{
    private sealed class Output(Stream stream)
    {
        public long Position;
        private readonly byte[] _block = new byte[SnapshotFormat.BlockSize];
        public readonly List<(SectionKind Kind, uint Slot, long Offset)> Index = new();

        public Span<byte> Block => _block;

        public void WriteBlock()
        {
            stream.Write(_block);
            Position += _block.Length;
        }

        public void Write(ReadOnlySpan<byte> bytes)
        {
            stream.Write(bytes);
            Position += bytes.Length;
        }

        public void Pad()
        {
            int pad = (int)SnapshotFormat.Pad(Position);
            if (pad == 0) return;
            Span<byte> zeros = stackalloc byte[SnapshotFormat.BlockSize];
            zeros.Clear();
            Write(zeros[..pad]);
        }

        public void Header(SectionKind kind, uint slot, uint generation, long length, ulong hash, ulong aux)
        {
            Index.Add((kind, slot, Position));
            SectionHeader.Write(_block, kind, slot, generation, length, hash, aux);
            WriteBlock();
        }

        /// <summary>A small section from a managed buffer.</summary>
        public void Section(SectionKind kind, ReadOnlySpan<byte> payload, ulong aux = 0)
        {
            Header(kind, 0, 0, payload.Length, XxHash64.HashToUInt64(payload), aux);
            Write(payload);
            Pad();
        }
    }

    public static void Save(StoreRoot* root, StoreLock storeLock, Stream stream)
    {
        var output = new Output(stream);
        Span<byte> header = output.Block;
        header.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(header, SnapshotFormat.FileMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], SnapshotFormat.Version);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], SnapshotFormat.BlockSize);
        SnapshotFormat.SealBlock(header);
        output.WriteBlock();

        uint slots = Volatile.Read(ref root->TreeCount);
        var table = new byte[(long)slots * SnapshotFormat.TreeEntrySize];
        for (uint slot = 0; slot < slots; slot++)
        {
            TreeRecord* tree = root->Trees[slot];
            Span<byte> entry = table.AsSpan((int)slot * SnapshotFormat.TreeEntrySize, SnapshotFormat.TreeEntrySize);
            using TreeReadScope scope = TreeReadScope.Enter(tree);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[4..], tree->Generation);
            if (tree->Live == 0) continue;
            uint count = tree->Nodes.Count;
            BinaryPrimitives.WriteUInt32LittleEndian(entry, count);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[8..], 1);
            WriteNodes(output, ref tree->Nodes, slot, tree->Generation, tree->Total);
        }
        output.Section(SectionKind.Trees, table);

        uint symbolCount;
        int chunkCount;
        long highWater, nameBytes;
        using (storeLock.Enter())
        {
            symbolCount = root->Symbols.Count;
            nameBytes = root->Symbols.NameBytes;
            chunkCount = root->Symbols.Arena.ChunkCount;
            highWater = root->Symbols.Arena.HighWater;
        }
        WriteSymbols(output, ref root->Symbols.Entries, symbolCount, nameBytes);

        ref ByteArena arena = ref root->Symbols.Arena;
        var runs = new byte[(long)chunkCount * SnapshotFormat.RunEntrySize];
        for (int c = 0; c < chunkCount; c++) BinaryPrimitives.WriteUInt32LittleEndian(runs.AsSpan(c * 4), (uint)arena.RunLength(c));
        output.Section(SectionKind.ChunkRuns, runs);
        WriteNames(output, ref arena, chunkCount, highWater);

        var index = new byte[(long)output.Index.Count * SnapshotFormat.IndexEntrySize];
        for (int i = 0; i < output.Index.Count; i++)
        {
            Span<byte> e = index.AsSpan(i * SnapshotFormat.IndexEntrySize);
            BinaryPrimitives.WriteUInt32LittleEndian(e, (uint)output.Index[i].Kind);
            BinaryPrimitives.WriteUInt32LittleEndian(e[4..], output.Index[i].Slot);
            BinaryPrimitives.WriteInt64LittleEndian(e[8..], output.Index[i].Offset);
        }
        long indexOffset = output.Position;
        output.Section(SectionKind.Index, index);

        Span<byte> trailer = output.Block;
        trailer.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(trailer, SnapshotFormat.TrailerMagic);
        BinaryPrimitives.WriteInt64LittleEndian(trailer[8..], indexOffset);
        BinaryPrimitives.WriteInt64LittleEndian(trailer[16..], output.Position + SnapshotFormat.BlockSize);
        SnapshotFormat.SealBlock(trailer);
        output.WriteBlock();
        stream.Flush();
    }

    private static void WriteNodes(Output output, ref NodeSlabs nodes, uint slot, uint generation, ulong total)
    {
        uint count = nodes.Count;
        var hash = new XxHash64();
        ForEachSlab(ref nodes, count, span => hash.Append(span));
        output.Header(SectionKind.Nodes, slot, generation, (long)count * SnapshotFormat.NodeSize, hash.GetCurrentHashAsUInt64(), total);
        ForEachSlab(ref nodes, count, span => output.Write(span));
        output.Pad();
    }

    private delegate void SpanAction(ReadOnlySpan<byte> span);

    private static void ForEachSlab(ref NodeSlabs nodes, uint count, SpanAction action)
    {
        uint done = 0;
        for (int s = 0; done < count; s++)
        {
            uint items = Math.Min(NodeSlabs.SlabItems(s), count - done);
            action(new ReadOnlySpan<byte>(nodes.Slab(s), (int)items * SnapshotFormat.NodeSize));
            done += items;
        }
    }

    private static void WriteSymbols(Output output, ref SlabList<SymbolEntry> entries, uint count, long nameBytes)
    {
        var hash = new XxHash64();
        uint done = 0;
        for (int s = 0; done < count; s++)
        {
            uint items = Math.Min(SlabList<SymbolEntry>.SlabItems(s), count - done);
            hash.Append(new ReadOnlySpan<byte>(entries.Slab(s), (int)items * SnapshotFormat.SymbolEntrySize));
            done += items;
        }
        output.Header(SectionKind.Symbols, 0, 0, (long)count * SnapshotFormat.SymbolEntrySize, hash.GetCurrentHashAsUInt64(), (ulong)nameBytes);
        done = 0;
        for (int s = 0; done < count; s++)
        {
            uint items = Math.Min(SlabList<SymbolEntry>.SlabItems(s), count - done);
            output.Write(new ReadOnlySpan<byte>(entries.Slab(s), (int)items * SnapshotFormat.SymbolEntrySize));
            done += items;
        }
        output.Pad();
    }

    private static void WriteNames(Output output, ref ByteArena arena, int chunkCount, long highWater)
    {
        var hash = new XxHash64();
        ForEachChunk(ref arena, chunkCount, highWater, span => hash.Append(span));
        output.Header(SectionKind.Names, 0, 0, highWater, hash.GetCurrentHashAsUInt64(), 0);
        ForEachChunk(ref arena, chunkCount, highWater, span => output.Write(span));
        output.Pad();
    }

    private static void ForEachChunk(ref ByteArena arena, int chunkCount, long highWater, SpanAction action)
    {
        byte* head = null;
        for (int c = 0; c < chunkCount && (long)c << ByteArena.ChunkShift < highWater; c++)
        {
            byte* p = arena.ChunkPointer(c);
            if (p != null) head = p;
            else p = head += ByteArena.ChunkBytes; // a run continues contiguously
            long remaining = highWater - ((long)c << ByteArena.ChunkShift);
            action(new ReadOnlySpan<byte>(p, (int)Math.Min(remaining, ByteArena.ChunkBytes)));
        }
    }
}
