namespace ProfileArena.Formats;

/// <summary>
/// Follows the nodes of one depth-first pre-order iteration (<see cref="ProfileTree.Iterate{TVisitor}(ref TVisitor)"/>)
/// and tells each node's depth and where its own name starts in the path, in amortised O(1) per node,
/// whatever the depth: visitors use it instead of counting ';' over the whole path (O(depth) per node,
/// quadratic on a deep chain).
/// </summary>
/// <remarks>
/// In pre-order a node's parent is the previous node or one of its ancestors. The tracker keeps the path
/// length of each open ancestor and drops those that are not followed by ';' in the new path. Names never
/// contain ';', so an open node deeper than the parent (its length falls inside the new node's name or
/// past it) is never taken for the parent. Each node is pushed once and dropped at most once.
/// </remarks>
public sealed class StackDepthTracker
{
    private readonly List<int> _ends = [];

    /// <summary>Depth of the last node given to <see cref="Next"/> (1 for a child of the root).</summary>
    public int Depth => _ends.Count;

    /// <summary>Where the last node's own name starts in its path (0 at depth 1).</summary>
    public int NameStart { get; private set; }

    /// <summary>Loop steps taken so far (one per push, one per pop): at most twice the nodes seen. Tests read it
    /// to show the work is linear without timing anything.</summary>
    internal long Steps { get; private set; }

    /// <summary>Takes the next visited node's path and returns its depth (1 for a child of the root).</summary>
    public int Next(ReadOnlySpan<byte> stack)
    {
        while (_ends.Count > 0)
        {
            int end = _ends[^1];
            if (end < stack.Length && stack[end] == (byte)';') break;
            _ends.RemoveAt(_ends.Count - 1);
            Steps++;
        }
        Steps++;
        NameStart = _ends.Count == 0 ? 0 : _ends[^1] + 1;
        _ends.Add(stack.Length);
        return _ends.Count;
    }

    /// <summary>Forgets every node, for a new iteration.</summary>
    public void Reset()
    {
        _ends.Clear();
        NameStart = 0;
    }
}
