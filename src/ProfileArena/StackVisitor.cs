namespace ProfileArena;

/// <summary>Receives one node of a tree during <see cref="ProfileTree.Iterate(StackVisitor)"/>.</summary>
/// <param name="stack">The node's path from the root, frame names joined by ';' (UTF-8 bytes as inserted).
/// Valid only during the call: the buffer is reused for the next node.</param>
/// <param name="self">Value inserted with a key that ends at this node.</param>
/// <param name="total">Value inserted with a key that passes through or ends at this node.</param>
public delegate void StackVisitor(ReadOnlySpan<byte> stack, ulong self, ulong total);

/// <summary>
/// A visitor for <see cref="ProfileTree.Iterate{TVisitor}(ref TVisitor)"/>. Implement it on a struct
/// (or ref struct) to iterate with no delegate and no allocation; the call is specialised for the type.
/// </summary>
public interface IStackVisitor
{
    /// <summary>Called once per node but the root, depth-first pre-order, siblings in ordinal byte order.</summary>
    /// <param name="stack">Path of names joined by ';'; valid only during the call.</param>
    /// <param name="self">Value of keys ending at this node.</param>
    /// <param name="total">Value of keys passing through or ending at this node.</param>
    void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total);
}
