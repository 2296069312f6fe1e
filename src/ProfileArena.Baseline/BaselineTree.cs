using System.Text;

namespace ProfileArena.Baseline;

/// <summary>Receives one node of <see cref="BaselineTree.IterateGo"/>: the Go key (";" + ";name"…) and self.</summary>
/// <remarks>The key buffer is reused between calls, as in Go: copy it if you keep it.</remarks>
public delegate void GoVisitor(ReadOnlySpan<byte> key, ulong self);

/// <summary>Receives one non-root node of <see cref="BaselineTree.Iterate"/>: names joined by ';', self, total.</summary>
/// <remarks>The stack buffer is reused between calls: copy it if you keep it.</remarks>
public delegate void StackVisitor(ReadOnlySpan<byte> stack, ulong self, ulong total);

/// <summary>One node of the reference tree: one managed object per node, as in the Go original.</summary>
public sealed class BaselineNode
{
    public BaselineNode(byte[] name) => Name = name;

    public byte[] Name { get; }
    public ulong Self { get; internal set; }
    public ulong Total { get; internal set; }

    /// <summary>Sorted by ordinal unsigned byte comparison of <see cref="Name"/>.</summary>
    /// <remarks>Allocated eagerly (empty list, no array) like the naive port the figures were measured on.</remarks>
    public List<BaselineNode> Children { get; } = new();
}

/// <summary>
/// Faithful object-per-node port of the Go take-home <c>Tree</c> (see shared/tree-semantics.md).
/// It is the oracle for differential tests and the "before" column of the take-home benchmark,
/// so it deliberately keeps the Go data layout and algorithms (sorted child slice, binary search,
/// insert by copy) instead of being optimised.
/// </summary>
public sealed class BaselineTree
{
    private readonly BaselineNode _root = new(Array.Empty<byte>());

    public BaselineNode Root => _root;

    /// <summary>Sum of all inserted values (the root's total).</summary>
    public ulong Total => _root.Total;

    /// <summary>Number of nodes, root included.</summary>
    public long NodeCount { get; private set; } = 1;

    public void Insert(string key, ulong value) => Insert(Encoding.UTF8.GetBytes(key), value);

    /// <summary>Inserts <paramref name="key"/> split on every ';' (empty segments kept).</summary>
    /// <exception cref="OverflowException">
    /// root.Total + value overflows; checked before any change (deliberate deviation: Go wraps).
    /// Since root.Total is the largest total on any path, no other node can overflow.
    /// </exception>
    public void Insert(ReadOnlySpan<byte> key, ulong value)
    {
        if (value > ulong.MaxValue - _root.Total)
            throw new OverflowException($"Tree total {_root.Total} + {value} overflows UInt64.");

        BaselineNode node = _root;
        while (true)
        {
            int sep = key.IndexOf((byte)';');
            ReadOnlySpan<byte> name = sep < 0 ? key : key[..sep];

            node.Total += value;
            node = FindOrAddChild(node, name);

            if (sep < 0)
                break;
            key = key[(sep + 1)..];
        }
        node.Self += value;
        node.Total += value;
    }

    private BaselineNode FindOrAddChild(BaselineNode parent, ReadOnlySpan<byte> name)
    {
        List<BaselineNode> children = parent.Children;
        // Go: i := sort.Search(len(children), func(i) bool { return bytes.Compare(children[i].Name, name) >= 0 })
        int lo = 0, hi = children.Count;
        while (lo < hi)
        {
            int mid = (int)((uint)(lo + hi) >> 1);
            if (children[mid].Name.AsSpan().SequenceCompareTo(name) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < children.Count && children[lo].Name.AsSpan().SequenceEqual(name))
            return children[lo];

        // ToArray of an empty span returns the shared Array.Empty<byte>(), so empty names cost no array.
        var child = new BaselineNode(name.ToArray());
        children.Insert(lo, child); // Go: append + copy to shift the tail.
        NodeCount++;
        return child;
    }

    /// <summary>
    /// Exactly the Go <c>Iterate</c>: every node, root included, depth-first pre-order, siblings in
    /// sorted order; key = for each node on the path from the root, ';' then its name (root ";").
    /// </summary>
    public void IterateGo(GoVisitor visitor)
    {
        ArgumentNullException.ThrowIfNull(visitor);
        Walk(visitor, null);
    }

    /// <summary>Every node but the root, same order as <see cref="IterateGo"/>; stack = names joined by ';'.</summary>
    public void Iterate(StackVisitor visitor)
    {
        ArgumentNullException.ThrowIfNull(visitor);
        Walk(null, visitor);
    }

    /// <summary>Maps a Go key to the stack of <see cref="Iterate"/>: ";;x;y" → "x;y"; the root's ";" → "".</summary>
    public static string GoKeyToStack(ReadOnlySpan<byte> goKey) => Encoding.UTF8.GetString(GoKeyToStackBytes(goKey));

    /// <summary>Byte form of <see cref="GoKeyToStack"/> (names need not be UTF-8).</summary>
    public static ReadOnlySpan<byte> GoKeyToStackBytes(ReadOnlySpan<byte> goKey)
    {
        if (goKey.Length == 1 && goKey[0] == (byte)';')
            return ReadOnlySpan<byte>.Empty;
        if (goKey.Length < 2 || goKey[0] != (byte)';' || goKey[1] != (byte)';')
            throw new ArgumentException("A Go key is \";\" (root) or starts with \";;\".", nameof(goKey));
        return goKey[2..];
    }

    private struct Frame
    {
        public BaselineNode Node;
        public int NextChild;
        public int KeyLength; // length of the Go key up to and including this node
    }

    // One iterative walk builds the Go key; the stack form is that key minus its leading ";;"
    // (";;x;y" → "x;y"), so both iterations share order and content by construction.
    // Explicit stack: 10,000-deep paths must not overflow the thread stack.
    private void Walk(GoVisitor? go, StackVisitor? stack)
    {
        byte[] key = new byte[256];
        key[0] = (byte)';';
        go?.Invoke(key.AsSpan(0, 1), _root.Self);

        var frames = new Frame[16];
        int depth = 0;
        frames[0] = new Frame { Node = _root, NextChild = 0, KeyLength = 1 };

        while (depth >= 0)
        {
            ref Frame top = ref frames[depth];
            List<BaselineNode> children = top.Node.Children;
            if (top.NextChild >= children.Count)
            {
                depth--;
                continue;
            }

            BaselineNode child = children[top.NextChild++];
            int start = top.KeyLength;
            int end = start + 1 + child.Name.Length;
            if (end > key.Length)
                Array.Resize(ref key, Math.Max(end, key.Length * 2));
            key[start] = (byte)';';
            child.Name.CopyTo(key, start + 1);

            go?.Invoke(key.AsSpan(0, end), child.Self);
            stack?.Invoke(key.AsSpan(2, end - 2), child.Self, child.Total);

            if (++depth == frames.Length)
                Array.Resize(ref frames, frames.Length * 2);
            frames[depth] = new Frame { Node = child, NextChild = 0, KeyLength = end };
        }
    }
}
