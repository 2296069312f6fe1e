namespace ProfileArena.Native;

/// <summary>Index of a node inside one tree's <see cref="NodeSlabs"/>.</summary>
/// <remarks>
/// Index 0 is always the tree's root. The root is never anyone's child, sibling or bucket entry,
/// so 0 doubles as "none" in every link field: zeroed memory is a valid empty link.
/// </remarks>
internal readonly record struct NodeIndex(uint Value)
{
    public static NodeIndex Root => default;
    public static NodeIndex None => default;
    public bool IsNone => Value == 0;
}

/// <summary>Id of an interned frame name inside a store's <see cref="SymbolTable"/>.</summary>
/// <remarks>Id 0 is the empty name, interned when the store is created (it is also the root's name).</remarks>
internal readonly record struct SymbolId(uint Value)
{
    /// <summary>Marks "not interned yet" in scratch arrays; never stored in a node.</summary>
    public static SymbolId Missing => new(uint.MaxValue);
    public bool IsMissing => Value == uint.MaxValue;
}
