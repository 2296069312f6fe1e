using System.Diagnostics;
using ProfileArena.Native;

namespace ProfileArena.Engine;

/// <summary>
/// Insert: resolve the key's path (reusing the previous key's resolved prefix), create what is
/// missing, add the value to the last node's self. Every step that can fail runs before the first change
/// to the tree or the symbol table, or is rolled back, so a refused insert leaves the store as it was.
/// </summary>
internal static unsafe class TreeWriter
{
    public const byte Separator = (byte)';';

    public static void Insert(StoreLock storeLock, StoreRoot* root, TreeRecord* tree, uint generation, ReadOnlySpan<byte> key, ulong value)
    {
        using var _ = TreeWriteScope.Enter(tree, generation, "insert into");
        InsertLocked(storeLock, root, tree, key, value);
    }

    private static void InsertLocked(StoreLock storeLock, StoreRoot* root, TreeRecord* tree, ReadOnlySpan<byte> key, ulong value)
    {
        ref NodeSlabs nodes = ref tree->Nodes;
        ref PathCache cache = ref tree->Cache;
        NativeAllocator* memory = &root->Memory;

        // Stack bounds first, before the key is read or anything allocated: every later length
        // (segment count + 1, cache capacities, Iterate's path buffer) is bounded by them.
        if (key.Length > root->MaxStackBytes) throw StackTooLong(root, key.Length);

        // The tree's total is the largest total of any node, so this one check covers every node.
        if (tree->Total > ulong.MaxValue - value)
            ThrowHelper.TotalOverflow(value, tree->Total);

        int common = 0, reused = 0;
        if (cache.Valid) reused = ReusableSegments(ref cache, key, out common);
        int keyCapacity = cache.KeyCapacity, depthCapacity = cache.DepthCapacity; // restored if refused

        try
        {
            // Split what follows the reused segments. Depth is counted first so the cache arrays
            // are sized (and can fail) before anything is written into them.
            int depth, start;
            if (reused > 0 && cache.SegmentEnds[reused - 1] == key.Length)
            {
                depth = reused; // the whole key is a prefix path of the previous one
                start = key.Length;
            }
            else
            {
                start = reused == 0 ? 0 : cache.SegmentEnds[reused - 1] + 1;
                depth = reused + key.Slice(start).Count(Separator) + 1; // ≤ MaxStackBytes + 1: no overflow
                if (depth > root->MaxStackFrames) throw TooManyFrames(root, depth);
            }
            cache.EnsureDepthCapacity(memory, depth);
            cache.EnsureKeyCapacity(memory, key.Length);
            cache.Valid = false;
            for (int i = reused, pos = start; i < depth; i++)
            {
                int semi = key.Slice(pos).IndexOf(Separator);
                int end = semi < 0 ? key.Length : pos + semi;
                cache.SegmentEnds[i] = end;
                pos = end + 1;
            }

            // Resolve the rest: names (under the store's store lock, held once per insert), then
            // edges down the known names until a child is missing; claim and create the missing nodes.
            NodeIndex parent = reused == 0 ? NodeIndex.Root : cache.PathNodes[reused - 1];
            int resolved = reused;
            if (reused < depth)
            {
                bool reserved = false;
                int created = 0;
                using (storeLock.Enter())
                {
                    int firstUnknown = depth;
                    ulong unknownHash = 0;
                    for (int i = reused; i < depth; i++)
                    {
                        ReadOnlySpan<byte> name = Segment(ref cache, key, i);
                        ulong hash = SymbolTable.Hash(name);
                        SymbolId id = root->Symbols.Find(name, hash);
                        cache.Symbols[i] = id;
                        // Below the first name the store has never seen, every node is new.
                        if (id.IsMissing) { firstUnknown = i; unknownHash = hash; break; }
                    }
                    resolved = WalkEdges(tree, ref cache, ref parent, reused, firstUnknown);
                    if (firstUnknown < depth)
                    {
                        // Names must be interned, so claim the nodes first (the node claim is the
                        // step that can be refused without having changed the symbol table).
                        created = depth - resolved;
                        TreeRecord.Room room = tree->ReserveNodes(root, created);
                        reserved = true;
                        InternUnknown(root, tree, key, ref cache, firstUnknown, unknownHash, depth, created, room);
                    }
                }
                if (!reserved)
                {
                    created = depth - resolved;
                    if (created > 0) tree->ReserveNodes(root, created);
                }
                for (int i = resolved; i < depth; i++)
                {
                    parent = tree->AddChild(parent, cache.Symbols[i]); // cannot fail: room was reserved
                    cache.PathNodes[i] = parent;
                }
            }

            // Totals are derived when read (see Node): only the last node and the tree's sum change.
            nodes[cache.PathNodes[depth - 1]]->Self += value;
            tree->Total += value;

            // Bytes before `common` are already in the cache (they equal the previous key).
            key.Slice(common).CopyTo(new Span<byte>(cache.Key + common, key.Length - common));
            cache.KeyLength = key.Length;
            cache.Depth = depth;
            cache.Valid = true;
        }
        catch
        {
            cache.Valid = false;
            // A refused insert gives back the cache room it grew: the store's bytes are as before.
            cache.RestoreCapacity(memory, keyCapacity, depthCapacity);
            throw;
        }
    }

    public static StoreLimitExceededException StackTooLong(StoreRoot* root, long bytes) =>
        new(StoreLimit.StackBytes, root->MaxStackBytes,
            $"a stack of {bytes} bytes is longer than TreeStoreOptions.MaxStackBytes = {root->MaxStackBytes}");

    public static StoreLimitExceededException TooManyFrames(StoreRoot* root, long frames) =>
        new(StoreLimit.StackFrames, root->MaxStackFrames,
            $"a stack of {frames} frames is deeper than TreeStoreOptions.MaxStackFrames = {root->MaxStackFrames}");

    /// <summary>
    /// How many leading segments of <paramref name="key"/> are identical to the cached key's, so
    /// their nodes can be taken from the cache. A segment is reusable when its bytes and the
    /// delimiter after it (or the end of both keys) lie inside the common prefix.
    /// </summary>
    private static int ReusableSegments(ref PathCache cache, ReadOnlySpan<byte> key, out int common)
    {
        common = KeyPrefix.CommonLength(key, new ReadOnlySpan<byte>(cache.Key, cache.KeyLength));
        // First segment whose end is not before `common` (ends are strictly increasing).
        int lo = 0, hi = cache.Depth;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (cache.SegmentEnds[mid] < common) lo = mid + 1; else hi = mid;
        }
        if (lo < cache.Depth && cache.SegmentEnds[lo] == common && (common == key.Length || key[common] == Separator))
            lo++;
        return lo;
    }

    private static ReadOnlySpan<byte> Segment(ref PathCache cache, ReadOnlySpan<byte> key, int i)
    {
        int start = i == 0 ? 0 : cache.SegmentEnds[i - 1] + 1;
        return key.Slice(start, cache.SegmentEnds[i] - start);
    }

    /// <summary>Follows existing edges from <paramref name="parent"/> for segments [from, to); returns the first segment without a child.</summary>
    private static int WalkEdges(TreeRecord* tree, ref PathCache cache, ref NodeIndex parent, int from, int to)
    {
        int i = from;
        for (; i < to; i++)
        {
            NodeIndex child = tree->Edges.Find(ref tree->Nodes, parent, cache.Symbols[i]);
            if (child.IsNone) break;
            cache.PathNodes[i] = child;
            parent = child;
        }
        return i;
    }

    /// <summary>
    /// Interns the names of segments [firstUnknown, depth), all or nothing (the caller holds the symbol
    /// lock and has claimed <paramref name="created"/> nodes, which are returned on failure).
    /// </summary>
    private static void InternUnknown(StoreRoot* root, TreeRecord* tree, ReadOnlySpan<byte> key, ref PathCache cache,
        int firstUnknown, ulong firstHash, int depth, int created, TreeRecord.Room room)
    {
        NativeAllocator* memory = &root->Memory;
        SymbolTable.Checkpoint checkpoint = root->Symbols.Save();
        try
        {
            cache.Symbols[firstUnknown] = root->Symbols.Add(memory, Segment(ref cache, key, firstUnknown), firstHash, root->MaxSymbolBytes);
            for (int i = firstUnknown + 1; i < depth; i++)
                cache.Symbols[i] = root->Symbols.FindOrAdd(memory, Segment(ref cache, key, i), root->MaxSymbolBytes);
            root->Symbols.Commit(memory);
        }
        catch
        {
            root->Symbols.Rollback(memory, checkpoint);
            tree->CancelReservation(root, created, room);
            throw;
        }
    }

}
