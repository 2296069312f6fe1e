using System.Runtime.InteropServices;

namespace ProfileArena.Native;

/// <summary>One tree node: 32 bytes in a <see cref="NodeSlabs"/> slab.</summary>
/// <remarks>
/// <para>Only <c>Self</c> is stored. <c>Total</c> is the sum of Self over the node's subtree, and is
/// computed when read (one backward pass over the slabs: a node's index is greater than its
/// parent's, so adding each node's total into its parent from the highest index down finishes
/// every subtree before its parent is read). An insert therefore touches one node's value instead
/// of every node on its path — 25 M additions per take-home tree become 100 k — and the tree's
/// total (kept in <see cref="TreeRecord.Total"/>) is what the overflow check needs.</para>
/// <para>Children form an unordered singly-linked list (FirstChild → NextSibling, newest first);
/// ordinal order is produced when reading. NextInBucket chains nodes in the tree's
/// <see cref="EdgeIndex"/> bucket for hash(Parent, Symbol).</para>
/// </remarks>
[StructLayout(LayoutKind.Sequential)]
internal struct Node
{
    public ulong Self;
    public SymbolId Symbol;
    public NodeIndex Parent;
    public NodeIndex FirstChild;
    public NodeIndex NextSibling;
    public NodeIndex NextInBucket;
    private uint _padding; // keeps Self 8-aligned in every node of a slab (32-byte stride)
}
