using System.Buffers.Binary;
using System.IO.Hashing;
using ProfileArena.Native;

namespace ProfileArena.Snapshots;

/// <summary>
/// Snapshot file format, version 1 (layout documented in native-notes.md, "Snapshot layout").
/// Little-endian throughout. A 64-byte file header, then sections, each a 64-byte section header and
/// a payload padded with zeros to a multiple of 64 bytes (so every payload is 64-byte aligned in the
/// file and in a mapping of it), then a 64-byte trailer. Every header and the trailer end with the
/// XxHash64 of their first 56 bytes; every section header holds the XxHash64 of its payload.
/// </summary>
internal static class SnapshotFormat
{
    public const ulong FileMagic = 0x414E4552_41465250; // "PRFARENA"
    public const ulong TrailerMagic = 0x00444E45_41465250; // "PRFAEND\0"
    public const uint SectionMagic = 0x54434553; // "SECT"
    public const uint Version = 1;
    public const int BlockSize = 64;
    public const int HashedBytes = 56;

    public const int NodeSize = 32;
    public const int TreeEntrySize = 16;
    public const int SymbolEntrySize = 8;
    public const int RunEntrySize = 4;
    public const int IndexEntrySize = 16;

    public static long Pad(long length) => (BlockSize - (length % BlockSize)) % BlockSize;

    public static ulong HeaderHash(ReadOnlySpan<byte> block) => XxHash64.HashToUInt64(block[..HashedBytes]);

    public static void SealBlock(Span<byte> block) => BinaryPrimitives.WriteUInt64LittleEndian(block[HashedBytes..], HeaderHash(block));

    public static InvalidDataException Invalid(long offset, string what)
        => new($"Invalid ProfileArena snapshot at byte offset {offset}: {what}.");

    /// <summary>Checks the 64-byte file header (magic, checksum, version, size and flags).</summary>
    public static void ParseFileHeader(ReadOnlySpan<byte> block)
    {
        if (BinaryPrimitives.ReadUInt64LittleEndian(block) != SnapshotFormat.FileMagic)
            throw SnapshotFormat.Invalid(0, "not a ProfileArena snapshot (magic \"PRFARENA\" missing)");
        if (BinaryPrimitives.ReadUInt64LittleEndian(block[SnapshotFormat.HashedBytes..]) != SnapshotFormat.HeaderHash(block))
            throw SnapshotFormat.Invalid(SnapshotFormat.HashedBytes, "file header checksum mismatch");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(block[8..]);
        if (version != SnapshotFormat.Version)
            throw SnapshotFormat.Invalid(8, $"format version {version} is not supported (this build reads version {SnapshotFormat.Version})");
        if (BinaryPrimitives.ReadUInt32LittleEndian(block[12..]) != SnapshotFormat.BlockSize || block[16..SnapshotFormat.HashedBytes].ContainsAnyExcept((byte)0))
            throw SnapshotFormat.Invalid(12, "unexpected header size or flags");
    }

    /// <summary>Checks the trailer: magic, checksum, the index offset and the file length it records.</summary>
    public static void ParseTrailer(ReadOnlySpan<byte> block, long at, long expectedIndex, long expectedLength)
    {
        if (BinaryPrimitives.ReadUInt64LittleEndian(block) != SnapshotFormat.TrailerMagic)
            throw SnapshotFormat.Invalid(at, "expected the trailer (magic \"PRFAEND\")");
        if (BinaryPrimitives.ReadUInt64LittleEndian(block[SnapshotFormat.HashedBytes..]) != SnapshotFormat.HeaderHash(block))
            throw SnapshotFormat.Invalid(at + SnapshotFormat.HashedBytes, "trailer checksum mismatch");
        if (BinaryPrimitives.ReadInt64LittleEndian(block[8..]) != expectedIndex)
            throw SnapshotFormat.Invalid(at + 8, "the trailer does not point at the index section");
        if (BinaryPrimitives.ReadInt64LittleEndian(block[16..]) != expectedLength || block[24..SnapshotFormat.HashedBytes].ContainsAnyExcept((byte)0))
            throw SnapshotFormat.Invalid(at + 16, "the trailer's file length is wrong");
    }

    /// <summary>Checks that <paramref name="length"/> name bytes end in the last of <paramref name="chunkCount"/> arena chunks.</summary>
    public static void CheckNamesLength(long length, int chunkCount, long at)
    {
        if (length > (long)chunkCount << ByteArena.ChunkShift || (chunkCount > 0 && length <= (long)(chunkCount - 1) << ByteArena.ChunkShift) || (chunkCount == 0 && length != 0))
            throw SnapshotFormat.Invalid(at, $"{length} name bytes do not end in the last of {chunkCount} chunks");
    }

    /// <summary>A node section as the tree table must agree with it: its slot, node count and generation.</summary>
    public readonly record struct TreeSection(uint Slot, ulong Count, uint Generation);

    /// <summary>
    /// The checks of the tree table (16 bytes per slot: node count, generation, live flag, zero) against
    /// the node sections, given by ascending slot; one for Load and OpenSnapshot alike. Returns the
    /// number of nodes of all trees (checked against <paramref name="maxNodes"/>).
    /// </summary>
    public static long CheckTreeTable(ReadOnlySpan<byte> table, long payloadOffset, ReadOnlySpan<TreeSection> sections, long maxNodes)
    {
        int slots = table.Length / TreeEntrySize;
        int next = 0;
        long nodeTotal = 0;
        for (int slot = 0; slot < slots; slot++)
        {
            ReadOnlySpan<byte> e = table.Slice(slot * TreeEntrySize, TreeEntrySize);
            long at = payloadOffset + (long)slot * TreeEntrySize;
            uint count = BinaryPrimitives.ReadUInt32LittleEndian(e), generation = BinaryPrimitives.ReadUInt32LittleEndian(e[4..]);
            uint live = BinaryPrimitives.ReadUInt32LittleEndian(e[8..]);
            if (live > 1 || BinaryPrimitives.ReadUInt32LittleEndian(e[12..]) != 0) throw Invalid(at + 8, "bad tree flags");
            bool hasSection = next < sections.Length && sections[next].Slot == slot;
            if ((live == 1) != hasSection) throw Invalid(at + 8, $"slot {slot} is {(live == 1 ? "live without" : "free with")} a node section");
            if (live == 1 && (sections[next].Count != count || count == 0 || sections[next].Generation != generation))
                throw Invalid(at, $"slot {slot}'s count or generation disagrees with its node section");
            if (live == 0 && count != 0) throw Invalid(at, $"free slot {slot} claims {count} nodes");
            if (hasSection) next++;
            nodeTotal += count;
        }
        if (next != sections.Length) throw Invalid(payloadOffset, $"node section for slot {sections[next].Slot} has no tree entry");
        if (nodeTotal > maxNodes)
            throw new StoreLimitExceededException(StoreLimit.Nodes, maxNodes, $"the snapshot holds {nodeTotal} nodes, over TreeStoreOptions.MaxNodes = {maxNodes}");
        return nodeTotal;
    }
}

/// <summary>Section kinds, in the order they appear in a file.</summary>
internal enum SectionKind : uint
{
    /// <summary>One per live tree, by ascending slot: the tree's nodes, 32 bytes each, node 0 = root.</summary>
    Nodes = 1,
    /// <summary>One 16-byte entry per tree slot: node count (0 if free), generation, live flag, 0.</summary>
    Trees = 2,
    /// <summary>One 8-byte <c>SymbolEntry</c> per symbol id: name position (8-byte units) and length.</summary>
    Symbols = 3,
    /// <summary>One u32 per 64 KiB name chunk: run length for the first chunk of a run, 0 for the others.</summary>
    ChunkRuns = 4,
    /// <summary>The name arena's bytes from position 0 to its high-water mark.</summary>
    Names = 5,
    /// <summary>(kind, slot, offset) of every earlier section: random access for OpenSnapshot.</summary>
    Index = 6,
}

/// <summary>A parsed, hash-checked section header.</summary>
internal struct SectionHeader
{
    public SectionKind Kind;
    public uint Slot;
    public uint Generation;
    public long Length;
    public ulong PayloadHash;
    public ulong Aux;
    public long Offset; // of the header; the payload starts 64 bytes later

    public readonly long PayloadOffset => Offset + SnapshotFormat.BlockSize;

    public static void Write(Span<byte> block, SectionKind kind, uint slot, uint generation, long length, ulong payloadHash, ulong aux)
    {
        block.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(block, SnapshotFormat.SectionMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(block[4..], (uint)kind);
        BinaryPrimitives.WriteUInt32LittleEndian(block[8..], slot);
        BinaryPrimitives.WriteUInt32LittleEndian(block[12..], generation);
        BinaryPrimitives.WriteInt64LittleEndian(block[16..], length);
        BinaryPrimitives.WriteUInt64LittleEndian(block[24..], payloadHash);
        BinaryPrimitives.WriteUInt64LittleEndian(block[32..], aux);
        SnapshotFormat.SealBlock(block);
    }

    /// <summary>Parses a header block read at <paramref name="offset"/>; throws InvalidDataException on any inconsistency.</summary>
    public static SectionHeader Parse(ReadOnlySpan<byte> block, long offset)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(block) != SnapshotFormat.SectionMagic)
            throw SnapshotFormat.Invalid(offset, "expected a section header (magic \"SECT\")");
        if (BinaryPrimitives.ReadUInt64LittleEndian(block[SnapshotFormat.HashedBytes..]) != SnapshotFormat.HeaderHash(block))
            throw SnapshotFormat.Invalid(offset + SnapshotFormat.HashedBytes, "section header checksum mismatch");
        var h = new SectionHeader
        {
            Kind = (SectionKind)BinaryPrimitives.ReadUInt32LittleEndian(block[4..]),
            Slot = BinaryPrimitives.ReadUInt32LittleEndian(block[8..]),
            Generation = BinaryPrimitives.ReadUInt32LittleEndian(block[12..]),
            Length = BinaryPrimitives.ReadInt64LittleEndian(block[16..]),
            PayloadHash = BinaryPrimitives.ReadUInt64LittleEndian(block[24..]),
            Aux = BinaryPrimitives.ReadUInt64LittleEndian(block[32..]),
            Offset = offset,
        };
        if (h.Kind is < SectionKind.Nodes or > SectionKind.Index)
            throw SnapshotFormat.Invalid(offset + 4, $"unknown section kind {(uint)h.Kind}");
        if (h.Length < 0 || h.Length > (1L << 46))
            throw SnapshotFormat.Invalid(offset + 16, $"section length {h.Length} out of range");
        if (h.Kind != SectionKind.Nodes && (h.Slot != 0 || h.Generation != 0))
            throw SnapshotFormat.Invalid(offset + 8, "slot and generation must be 0 outside node sections");
        if (block[40..SnapshotFormat.HashedBytes].ContainsAnyExcept((byte)0))
            throw SnapshotFormat.Invalid(offset + 40, "reserved bytes must be 0");
        int unit = h.Kind switch
        {
            SectionKind.Nodes => SnapshotFormat.NodeSize,
            SectionKind.Trees => SnapshotFormat.TreeEntrySize,
            SectionKind.Symbols => SnapshotFormat.SymbolEntrySize,
            SectionKind.ChunkRuns => SnapshotFormat.RunEntrySize,
            SectionKind.Index => SnapshotFormat.IndexEntrySize,
            _ => 1,
        };
        if (h.Length % unit != 0)
            throw SnapshotFormat.Invalid(offset + 16, $"section length {h.Length} is not a multiple of its {unit}-byte entries");
        return h;
    }
}
