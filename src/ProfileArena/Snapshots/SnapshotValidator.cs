using System.Runtime.CompilerServices;
using ProfileArena.Native;

namespace ProfileArena.Snapshots;

/// <summary>
/// Checks, on data that came from a file, everything Iterate, Insert, Merge, Top and Truncate rely on.
/// Shared by Load (after the bulk copy) and by OpenSnapshot (in place, in the mapping).
/// </summary>
internal static unsafe class SnapshotValidator
{
    /// <summary>
    /// Chunk runs: each run starts with its length r ≥ 1 followed by r − 1 zeros, runs tile all chunks.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per load/verify: skip tier 0
    public static void ValidateRuns(uint* runs, int chunkCount, long payloadOffset)
    {
        int c = 0;
        while (c < chunkCount)
        {
            uint r = runs[c];
            if (r == 0 || r > (uint)(chunkCount - c))
                throw SnapshotFormat.Invalid(payloadOffset + (long)c * 4, $"chunk {c} has run length {r} (chunks left: {chunkCount - c})");
            for (int k = 1; k < r; k++)
                if (runs[c + k] != 0)
                    throw SnapshotFormat.Invalid(payloadOffset + (long)(c + k) * 4, $"chunk {c + k} continues a run and must be 0");
            c += (int)r;
        }
    }

    /// <summary>
    /// Symbol entries: id 0 is the empty name; every name lies inside its chunk run and inside the saved
    /// name bytes, and contains no ';'. Returns the sum of name lengths.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per load/verify: skip tier 0
    public static long ValidateSymbols(ref SymbolTable symbols, uint count, uint* runs, int chunkCount, long namesLength,
        long payloadOffset)
    {
        if (count == 0) throw SnapshotFormat.Invalid(payloadOffset, "the symbol table is empty (id 0, the empty name, is required)");
        ref SlabList<SymbolEntry> entries = ref symbols.Entries;
        long total = 0;
        for (uint id = 0; id < count; id++)
        {
            SymbolEntry* e = entries[id];
            long at = payloadOffset + (long)id * SnapshotFormat.SymbolEntrySize;
            if (id == 0 && e->Length != 0) throw SnapshotFormat.Invalid(at + 4, "symbol 0 must be the empty name");
            if (e->Length == 0) continue;
            if (e->Length > int.MaxValue) throw SnapshotFormat.Invalid(at + 4, $"symbol {id} length {e->Length} out of range");
            long start = (long)e->Position8 << 3;
            long chunk = start >> ByteArena.ChunkShift;
            if (chunk >= chunkCount || runs[chunk] == 0)
                throw SnapshotFormat.Invalid(at, $"symbol {id} starts in chunk {chunk}, which does not begin a run of the {chunkCount} chunks");
            long end = start + e->Length;
            long runEnd = (chunk + runs[chunk]) << ByteArena.ChunkShift;
            if (end > runEnd || end > namesLength)
                throw SnapshotFormat.Invalid(at + 4, $"symbol {id} ends at name byte {end}, past its run ({runEnd}) or the saved names ({namesLength})");
            if (symbols.Name(new SymbolId(id)).Contains((byte)';'))
                throw SnapshotFormat.Invalid(at, $"symbol {id} contains ';', which cannot occur in a frame name");
            total += e->Length;
        }
        return total;
    }

    /// <summary>
    /// A tree's nodes: root shape, parent below child (what the totals pass and Merge rely on), symbol ids
    /// in range, every node but the root in exactly its parent's child list (so lists are finite and
    /// acyclic), Σ self equal to the recorded total (so no subtree total can overflow), and every
    /// root-to-node path within the store's MaxStackBytes and MaxStackFrames (so no length computed
    /// from a path later — Iterate's buffers, Top's stacks — can overflow). Symbols must be verified.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per load/verify: skip tier 0
    public static void ValidateTree(StoreRoot* store, ref NodeSlabs nodes, uint count, ulong total, long payloadOffset, long totalOffset)
    {
        uint symbolCount = store->Symbols.Count;
        if (count == 0) throw SnapshotFormat.Invalid(payloadOffset, "a tree needs its root node");
        Node* root = nodes[NodeIndex.Root];
        if (root->Parent.Value != 0 || root->Symbol.Value != 0 || root->NextSibling.Value != 0)
            throw SnapshotFormat.Invalid(payloadOffset, "node 0 must be the root (empty name, no parent, no sibling)");
        nuint bitmapBytes = ((nuint)count + 63) / 64 * sizeof(ulong);
        var seen = (ulong*)NativeAllocator.AllocScratch(bitmapBytes);
        nuint pathsBytes = (nuint)count * sizeof(ulong);
        ulong* paths = null; // (depth << 32) | path bytes, per node
        try
        {
            paths = (ulong*)NativeAllocator.AllocScratch(pathsBytes);
            paths[0] = 0;
            new Span<byte>(seen, (int)bitmapBytes).Clear(); // count < 2^32 → bitmap < 512 MiB
            ulong sum = 0;
            uint linked = 0;
            for (uint i = 0; i < count; i++)
            {
                Node* n = nodes[new NodeIndex(i)];
                long at = payloadOffset + (long)i * SnapshotFormat.NodeSize;
                if (i > 0)
                {
                    if (n->Parent.Value >= i) throw SnapshotFormat.Invalid(at + 12, $"node {i} has parent {n->Parent.Value}, not below its own index");
                    if (n->Symbol.Value >= symbolCount) throw SnapshotFormat.Invalid(at + 8, $"node {i} names symbol {n->Symbol.Value}, beyond the {symbolCount} symbols");
                    ulong parentPath = paths[n->Parent.Value]; // parent < i: already computed
                    long length = (n->Parent.Value == 0 ? 0 : (long)(uint)parentPath + 1) + store->Symbols.Name(n->Symbol).Length;
                    long depth = (long)(parentPath >> 32) + 1;
                    if (length > store->MaxStackBytes)
                        throw new StoreLimitExceededException(StoreLimit.StackBytes, store->MaxStackBytes,
                            $"node {i} (snapshot byte offset {at}) has a {length}-byte stack, over TreeStoreOptions.MaxStackBytes = {store->MaxStackBytes}");
                    if (depth > store->MaxStackFrames)
                        throw new StoreLimitExceededException(StoreLimit.StackFrames, store->MaxStackFrames,
                            $"node {i} (snapshot byte offset {at}) has a {depth}-frame stack, over TreeStoreOptions.MaxStackFrames = {store->MaxStackFrames}");
                    paths[i] = ((ulong)depth << 32) | (ulong)length;
                }
                if (n->Self > ulong.MaxValue - sum) throw SnapshotFormat.Invalid(at, "the selves of the tree overflow 64 bits");
                sum += n->Self;
                long linkAt = at + 16; // FirstChild, then each child's NextSibling
                for (uint c = n->FirstChild.Value; c != 0;)
                {
                    if (c >= count) throw SnapshotFormat.Invalid(linkAt, $"link to node {c}, beyond the tree's {count} nodes");
                    Node* child = nodes[new NodeIndex(c)]; // file data: an index only once checked against the count
                    long childAt = payloadOffset + (long)c * SnapshotFormat.NodeSize;
                    if (child->Parent.Value != i) throw SnapshotFormat.Invalid(childAt + 12, $"node {c} is in the child list of {i} but names parent {child->Parent.Value}");
                    ref ulong word = ref seen[c >> 6];
                    ulong bit = 1UL << (int)(c & 63);
                    if ((word & bit) != 0) throw SnapshotFormat.Invalid(linkAt, $"node {c} is linked twice (a cycle or a shared child list)");
                    word |= bit;
                    linked++;
                    linkAt = childAt + 20;
                    c = child->NextSibling.Value;
                }
            }
            if (linked != count - 1)
            {
                uint missing = 1;
                while ((seen[missing >> 6] & (1UL << (int)(missing & 63))) != 0) missing++;
                throw SnapshotFormat.Invalid(payloadOffset + (long)missing * SnapshotFormat.NodeSize, $"node {missing} is in no child list");
            }
            if (sum != total) throw SnapshotFormat.Invalid(totalOffset, $"the tree's total {total} is not the sum of its nodes' selves ({sum})");
        }
        finally
        {
            NativeAllocator.FreeScratch(seen, bitmapBytes);
            if (paths != null) NativeAllocator.FreeScratch(paths, pathsBytes);
        }
    }

    /// <summary>After the edge index is rebuilt: two children of one parent with the same name make lookups ambiguous.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per load/verify: skip tier 0
    public static void ValidateDistinctSiblings(TreeRecord* tree, long payloadOffset)
    {
        ref NodeSlabs nodes = ref tree->Nodes;
        for (uint i = 1; i < nodes.Count; i++)
        {
            Node* n = nodes[new NodeIndex(i)];
            if (tree->Edges.Find(ref nodes, n->Parent, n->Symbol).Value != i)
                throw SnapshotFormat.Invalid(payloadOffset + (long)i * SnapshotFormat.NodeSize + 8, $"node {i} repeats a sibling's name under parent {n->Parent.Value}");
        }
    }
}
