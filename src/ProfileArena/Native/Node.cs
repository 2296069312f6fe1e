using System.Runtime.InteropServices;

namespace ProfileArena.Native;

/// <summary>One tree node: 32 bytes in a <see cref="NodeSlabs"/> slab.</summary>
/// <remarks>
/// <para><c>Self</c> is not stored: it is exactly <c>Total − Σ child.Total</c> (every insert that passes
/// through a node either ends there or continues into exactly one child), and Iterate walks the
/// children anyway to order them. Dropping it keeps the node at 32 bytes with the links needed
/// for O(1) child lookup.</para>
/// <para>Children form an unordered singly-linked list (FirstChild → NextSibling, newest first);
/// ordinal order is produced when reading. NextInBucket chains nodes in the tree's
/// <see cref="EdgeIndex"/> bucket for hash(Parent, Symbol).</para>
/// </remarks>
[StructLayout(LayoutKind.Sequential)]
internal struct Node
{
    public ulong Total;
    public SymbolId Symbol;
    public NodeIndex Parent;
    public NodeIndex FirstChild;
    public NodeIndex NextSibling;
    public NodeIndex NextInBucket;
    private uint _padding; // keeps Total 8-aligned in every node of a slab (32-byte stride)
}
