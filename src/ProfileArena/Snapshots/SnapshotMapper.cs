using System.Runtime.CompilerServices;
using System.Buffers.Binary;
using System.IO.Hashing;
using ProfileArena.Native;

namespace ProfileArena.Snapshots;

/// <summary>
/// Opens a snapshot in place, in a read-only mapping: node slabs, symbol entries and name chunks are
/// borrowed (directories point into the mapping; nothing is copied). Headers, the index and the
/// symbol sections are checked at open (hashes, ranges, names); each tree's node section is checked
/// (hash and structure) the first time the tree is used, or at open when asked.
/// </summary>
internal static unsafe class SnapshotMapper
{
    /// <summary>Checks the file's frame and tables and builds a read-only store borrowing its sections;
    /// records in <paramref name="mapped"/> the sections verified later, on first use.</summary>
    public static StoreRoot* Open(MappedSnapshot mapped, TreeStoreOptions options)
    {
        byte* file = mapped.Base;
        long length = mapped.Length;
        const int B = SnapshotFormat.BlockSize;
        if (length < 3 * B) throw SnapshotFormat.Invalid(Math.Min(length, 0), $"a snapshot is at least {3 * B} bytes; this file has {length}");
        if (length % B != 0) throw SnapshotFormat.Invalid(length, "a snapshot's length is a multiple of 64");
        SnapshotFormat.ParseFileHeader(new ReadOnlySpan<byte>(file, B));
        long trailerAt = length - B;
        var trailer = new ReadOnlySpan<byte>(file + trailerAt, B);
        long indexAt = BinaryPrimitives.ReadInt64LittleEndian(trailer[8..]);
        SnapshotFormat.ParseTrailer(trailer, trailerAt, indexAt, length);
        if (indexAt < B || indexAt > trailerAt - B || indexAt % B != 0) throw SnapshotFormat.Invalid(trailerAt + 8, $"index offset {indexAt} out of range");
        SectionHeader index = Header(file, indexAt, trailerAt);
        if (index.Kind != SectionKind.Index) throw SnapshotFormat.Invalid(indexAt + 4, "the trailer does not point at the index section");
        if (index.PayloadOffset + index.Length + SnapshotFormat.Pad(index.Length) != trailerAt)
            throw SnapshotFormat.Invalid(indexAt + 16, "the index section does not end at the trailer");
        CheckHash(file, index);

        int sections = (int)(index.Length / SnapshotFormat.IndexEntrySize);
        var headers = new SectionHeader[sections];
        long previousEnd = B;
        SectionKind last = 0;
        for (int i = 0; i < sections; i++)
        {
            var e = new ReadOnlySpan<byte>(file + index.PayloadOffset + (long)i * SnapshotFormat.IndexEntrySize, SnapshotFormat.IndexEntrySize);
            long entryAt = index.PayloadOffset + (long)i * SnapshotFormat.IndexEntrySize;
            long at = BinaryPrimitives.ReadInt64LittleEndian(e[8..]);
            if (at != previousEnd) throw SnapshotFormat.Invalid(entryAt + 8, $"section {i} should start at {previousEnd}, the index says {at}");
            SectionHeader h = Header(file, at, indexAt);
            if ((uint)h.Kind != BinaryPrimitives.ReadUInt32LittleEndian(e) || h.Slot != BinaryPrimitives.ReadUInt32LittleEndian(e[4..]))
                throw SnapshotFormat.Invalid(entryAt, $"index entry {i} does not match the section header at {at}");
            if (h.Kind == SectionKind.Index || h.Kind < last || (h.Kind == last && h.Kind != SectionKind.Nodes))
                throw SnapshotFormat.Invalid(at + 4, $"section {h.Kind} out of order");
            if (h.Kind == SectionKind.Nodes && i > 0 && headers[i - 1].Kind == SectionKind.Nodes && h.Slot <= headers[i - 1].Slot)
                throw SnapshotFormat.Invalid(at + 8, "node sections must come by ascending slot");
            last = h.Kind;
            headers[i] = h;
            previousEnd = h.PayloadOffset + h.Length + SnapshotFormat.Pad(h.Length);
        }
        if (previousEnd != indexAt) throw SnapshotFormat.Invalid(indexAt, "the sections do not end where the index starts");

        int firstOther = 0;
        while (firstOther < sections && headers[firstOther].Kind == SectionKind.Nodes) firstOther++;
        if (sections - firstOther != 4) throw SnapshotFormat.Invalid(index.PayloadOffset, "a required section (trees, symbols, chunk runs, names) is missing");
        SectionHeader trees = headers[firstOther], symbols = headers[firstOther + 1], runs = headers[firstOther + 2], names = headers[firstOther + 3];
        CheckHash(file, trees); // small: one entry per slot
        if (symbols.Length / SnapshotFormat.SymbolEntrySize >= uint.MaxValue) throw SnapshotFormat.Invalid(symbols.Offset + 16, "too many symbols");
        if (runs.Length / SnapshotFormat.RunEntrySize > ByteArena.MaxChunks) throw SnapshotFormat.Invalid(runs.Offset + 16, "too many name chunks");
        uint symbolCount = (uint)(symbols.Length / SnapshotFormat.SymbolEntrySize);
        int chunkCount = (int)(runs.Length / SnapshotFormat.RunEntrySize);
        SnapshotFormat.CheckNamesLength(names.Length, chunkCount, names.Offset + 16);
        if (symbolCount == 0) throw SnapshotFormat.Invalid(symbols.PayloadOffset, "the symbol table is empty");

        StoreRoot* root = StoreRoot.Create(options, internEmptyName: false);
        try
        {
            mapped.Symbols = symbols;
            mapped.Runs = runs;
            mapped.Names = names;
            // Symbols are verified (checksums, runs, ranges, names) on first use, like the trees: see VerifySymbols.

            if (trees.Length > int.MaxValue) throw SnapshotFormat.Invalid(trees.Offset + 16, "too many tree slots");
            int slots = (int)(trees.Length / SnapshotFormat.TreeEntrySize);
            var table = new ReadOnlySpan<byte>(file + trees.PayloadOffset, (int)trees.Length);
            var sectionsBySlot = new SnapshotFormat.TreeSection[firstOther];
            for (int i = 0; i < firstOther; i++)
                sectionsBySlot[i] = new(headers[i].Slot, (ulong)headers[i].Length / SnapshotFormat.NodeSize, headers[i].Generation);
            long nodeTotal = SnapshotFormat.CheckTreeTable(table, trees.PayloadOffset, sectionsBySlot, root->MaxNodes);
            var sectionOf = new MappedSnapshot.MappedTree[slots];
            int next = 0;
            if (slots > 0) root->Trees.EnsureCapacity(&root->Memory, (ulong)slots);
            for (int slot = 0; slot < slots; slot++)
            {
                TreeRecord* tree = root->Trees[(uint)slot];
                *tree = default;
                tree->Generation = BinaryPrimitives.ReadUInt32LittleEndian(table[(slot * SnapshotFormat.TreeEntrySize + 4)..]);
                root->TreeCount = (uint)slot + 1;
                if (next >= firstOther || headers[next].Slot != slot) continue;
                SectionHeader h = headers[next++];
                tree->Nodes.Borrow(&root->Memory, (Node*)(file + h.PayloadOffset), (uint)(h.Length / SnapshotFormat.NodeSize));
                tree->Total = h.Aux;
                sectionOf[slot] = new MappedSnapshot.MappedTree { SectionOffset = h.PayloadOffset, SectionHash = h.PayloadHash };
                tree->Live = 1;
                root->LiveTrees++;
            }
            root->NodeCount = nodeTotal;
            mapped.SetTrees(sectionOf);
            return root;
        }
        catch
        {
            StoreRoot.Destroy(root);
            throw;
        }
    }

    private static SectionHeader Header(byte* file, long at, long limit)
    {
        if (at < SnapshotFormat.BlockSize || at % SnapshotFormat.BlockSize != 0 || at > limit - SnapshotFormat.BlockSize)
            throw SnapshotFormat.Invalid(at, "section header offset out of range");
        SectionHeader h = SectionHeader.Parse(new ReadOnlySpan<byte>(file + at, SnapshotFormat.BlockSize), at);
        if (h.Length > limit - h.PayloadOffset) throw SnapshotFormat.Invalid(at + 16, $"section length {h.Length} runs past {limit}");
        return h;
    }

    public static void CheckHash(byte* file, in SectionHeader h)
    {
        if (Hash(file + h.PayloadOffset, h.Length) != h.PayloadHash)
            throw SnapshotFormat.Invalid(h.PayloadOffset, $"{h.Kind} section checksum mismatch");
    }

    public static ulong Hash(byte* p, long length)
    {
        var hash = new XxHash64();
        while (length > 0)
        {
            int n = (int)Math.Min(length, 1 << 30);
            hash.Append(new ReadOnlySpan<byte>(p, n));
            p += n;
            length -= n;
        }
        return hash.GetCurrentHashAsUInt64();
    }

    /// <summary>
    /// First use of a mapped store's names: the symbol, chunk-run and name sections' checksums, the runs,
    /// every name's range; then the entries and name chunks are borrowed from the mapping (no hash
    /// slots: reading never looks names up; they are built on the first lookup).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per load/verify: skip tier 0
    public static void VerifySymbols(StoreRoot* root, MappedSnapshot mapped)
    {
        byte* file = mapped.Base;
        SectionHeader symbols = mapped.Symbols, runs = mapped.Runs, names = mapped.Names;
        CheckHash(file, symbols);
        CheckHash(file, runs);
        CheckHash(file, names);
        uint symbolCount = (uint)(symbols.Length / SnapshotFormat.SymbolEntrySize);
        int chunkCount = (int)(runs.Length / SnapshotFormat.RunEntrySize);
        uint* runTable = (uint*)(file + runs.PayloadOffset);
        SnapshotValidator.ValidateRuns(runTable, chunkCount, runs.PayloadOffset);
        var borrowed = new SymbolTable();
        try
        {
            borrowed.Entries.Borrow(&root->Memory, (SymbolEntry*)(file + symbols.PayloadOffset), symbolCount);
            borrowed.Arena.Borrow(&root->Memory, file + names.PayloadOffset, runTable, chunkCount);
            borrowed.Arena.SetLoaded(names.Length);
            long nameBytes = SnapshotValidator.ValidateSymbols(ref borrowed, symbolCount, runTable, chunkCount, names.Length, symbols.PayloadOffset);
            if ((ulong)nameBytes != symbols.Aux) throw SnapshotFormat.Invalid(symbols.Offset + 32, $"the header says {symbols.Aux} name bytes, the entries hold {nameBytes}");
            borrowed.AdoptLoaded(&root->Memory, symbolCount, nameBytes, index: false);
        }
        catch
        {
            borrowed.Free(&root->Memory);
            throw;
        }
        root->Symbols = borrowed; // published under the store's store lock, before SymbolsVerified
    }

    /// <summary>First use of a mapped tree: its node section's hash, then its structure.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per load/verify: skip tier 0
    public static void VerifyTree(StoreRoot* root, TreeRecord* tree, MappedSnapshot mapped, in MappedSnapshot.MappedTree section)
    {
        uint count = tree->Nodes.Count;
        if (Hash(mapped.Base + section.SectionOffset, (long)count * SnapshotFormat.NodeSize) != section.SectionHash)
            throw SnapshotFormat.Invalid(section.SectionOffset, "Nodes section checksum mismatch");
        SnapshotValidator.ValidateTree(root, ref tree->Nodes, count, tree->Total, section.SectionOffset,
            section.SectionOffset - SnapshotFormat.BlockSize + 32);
    }
}
