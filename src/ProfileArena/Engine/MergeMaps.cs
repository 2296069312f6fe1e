using System.Diagnostics;
using ProfileArena.Native;

namespace ProfileArena.Engine;

/// <summary>
/// The scratch of merges from one source store into one target store: a source-symbol → target-symbol map
/// kept across merges (a <see cref="TreeMergeSession"/>), and the per-merge arrays (source node → target node,
/// names to intern), reused from one merge to the next. All of it is process scratch (counted by
/// <see cref="TreeStore.ProcessNativeBytes"/> while held), owned by whoever holds the value; not thread-safe.
/// </summary>
/// <remarks>
/// <para>The symbol map is paged: a directory of pointers to pages of <see cref="PageEntries"/> ids, a page
/// allocated (filled with <see cref="Unmapped"/>) on the first name of its id range. So a merge of a small tree
/// from a store with millions of names costs what its names touch, not the store's size, and a session merging
/// many trees of one store looks each source name up (hash + probe in the target's table) once.</para>
/// <para>Why an entry stays true: a source id seen in a node was committed before the node existed (names are
/// interned, and a refused batch rolled back, before any node refers to them) and is never removed or renumbered
/// while the source store lives; a target id is likewise permanent once committed. A name queued for interning
/// (<see cref="SymbolId.Missing"/>) is either interned by the same merge or reset to <see cref="Unmapped"/>
/// when that merge is refused (<see cref="ForgetPending"/>), so no entry ever names a rolled-back id.</para>
/// </remarks>
internal unsafe struct MergeMaps
{
    /// <summary>Map entry: not looked up yet (never an id: see SymbolTable.Add).</summary>
    public static SymbolId Unmapped => new(uint.MaxValue - 1);

    private const int PageShift = 10;
    /// <summary>Ids per page: 4 KiB of entries (a small tree of a huge store touches few bytes per name).</summary>
    public const uint PageEntries = 1u << PageShift;
    private const uint PageMask = PageEntries - 1;

    private SymbolId** _pages;  // directory: page p maps source ids [p·PageEntries, (p+1)·PageEntries), or null
    private uint _pageSlots;    // directory length
    private uint _pageCount;    // pages allocated

    private NodeIndex* _nodes;  // per merge: source node → target node
    private uint _nodeCapacity;

    private uint* _pending;     // per merge: source ids looked up and missing from the target (to intern)
    private uint _pendingCount;
    private uint _pendingCapacity;

    /// <summary>Bytes of process scratch held now.</summary>
    public readonly long HeldBytes =>
        (long)_pageSlots * sizeof(nint) + (long)_pageCount * PageEntries * sizeof(SymbolId)
        + (long)_nodeCapacity * sizeof(NodeIndex) + (long)_pendingCapacity * sizeof(uint);

    /// <summary>The source node → target node array, at least <paramref name="count"/> long (contents undefined).</summary>
    public NodeIndex* NodeMap(uint count)
    {
        if (count > _nodeCapacity)
        {
            uint capacity = Math.Max(count, Math.Min(uint.MaxValue / 2, _nodeCapacity) * 2);
            NativeAllocator.FreeScratch(_nodes, (nuint)_nodeCapacity * (nuint)sizeof(NodeIndex));
            _nodes = null;
            _nodeCapacity = 0;
            _nodes = (NodeIndex*)NativeAllocator.AllocScratch((nuint)capacity * (nuint)sizeof(NodeIndex));
            _nodeCapacity = capacity;
        }
        return _nodes;
    }

    /// <summary>Makes the directory cover source ids below <paramref name="symbolCount"/>.</summary>
    public void Cover(uint symbolCount)
    {
        uint slots = (uint)(((ulong)symbolCount + PageMask) >> PageShift);
        if (slots <= _pageSlots) return;
        uint grown = (uint)Math.Min(1uL << (32 - PageShift), Math.Max(slots, (ulong)_pageSlots * 2));
        nuint oldBytes = (nuint)_pageSlots * (nuint)sizeof(nint), newBytes = (nuint)grown * (nuint)sizeof(nint);
        var pages = (SymbolId**)NativeAllocator.AllocScratch(newBytes);
        new Span<nint>(pages, (int)grown).Clear();
        if (_pages != null) new Span<nint>(_pages, (int)_pageSlots).CopyTo(new Span<nint>(pages, (int)grown));
        NativeAllocator.FreeScratch(_pages, oldBytes);
        _pages = pages;
        _pageSlots = grown;
    }

    /// <summary>The entry of <paramref name="source"/>, allocating its page if needed (after <see cref="Cover"/>).</summary>
    public ref SymbolId Entry(SymbolId source)
    {
        Debug.Assert(source.Value >> PageShift < _pageSlots, "Cover the source store's symbols first");
        ref SymbolId* page = ref _pages[source.Value >> PageShift];
        if (page == null) page = NewPage();
        return ref page[source.Value & PageMask];
    }

    /// <summary>The entry of <paramref name="source"/> whose page is known to exist (every name of the tree was
    /// resolved first): two loads, no hashing.</summary>
    public readonly SymbolId Mapped(SymbolId source) => _pages[source.Value >> PageShift][source.Value & PageMask];

    private SymbolId* NewPage()
    {
        var page = (SymbolId*)NativeAllocator.AllocScratch(PageEntries * (nuint)sizeof(SymbolId));
        new Span<SymbolId>(page, (int)PageEntries).Fill(Unmapped);
        _pageCount++;
        return page;
    }

    /// <summary>Queues <paramref name="source"/> (looked up, missing from the target) to be interned by this merge.</summary>
    public void AddPending(SymbolId source)
    {
        if (_pendingCount == _pendingCapacity)
        {
            uint capacity = Math.Max(64, Math.Min(uint.MaxValue / 2, _pendingCapacity) * 2);
            _pending = (uint*)NativeAllocator.ReallocScratch(_pending, (nuint)_pendingCapacity * sizeof(uint), (nuint)capacity * sizeof(uint));
            _pendingCapacity = capacity;
        }
        _pending[_pendingCount++] = source.Value;
    }

    /// <summary>Names queued by this merge, in the order they were met.</summary>
    public readonly ReadOnlySpan<uint> Pending => new(_pending, (int)_pendingCount);

    /// <summary>After the queued names were interned: the queue is empty (their entries hold target ids).</summary>
    public void ClearPending() => _pendingCount = 0;

    /// <summary>After a refused merge (its names rolled back): the queued names are unmapped again.</summary>
    public void ForgetPending()
    {
        for (uint i = 0; i < _pendingCount; i++) Entry(new SymbolId(_pending[i])) = Unmapped;
        _pendingCount = 0;
    }

    /// <summary>Frees everything; the value is empty and reusable afterwards. Idempotent.</summary>
    public void Free()
    {
        for (uint p = 0; p < _pageSlots; p++)
        {
            if (_pages[p] != null) NativeAllocator.FreeScratch(_pages[p], PageEntries * (nuint)sizeof(SymbolId));
        }
        NativeAllocator.FreeScratch(_pages, (nuint)_pageSlots * (nuint)sizeof(nint));
        NativeAllocator.FreeScratch(_nodes, (nuint)_nodeCapacity * (nuint)sizeof(NodeIndex));
        NativeAllocator.FreeScratch(_pending, (nuint)_pendingCapacity * sizeof(uint));
        this = default;
    }
}
