using ProfileArena.Baseline;

namespace ProfileArena.Workloads;

/// <summary>Something that accepts a generator's inserts (an engine's tree, or a benchmark's floor).</summary>
/// <remarks>Generators take the sink as a generic struct (<c>where TSink : IKeySink</c>), so each sink gets its
/// own compiled loop and an insert is a direct, inlinable call: no interface dispatch per key.</remarks>
public interface IKeySink
{
    void Insert(ReadOnlySpan<byte> key, ulong value);
}

/// <summary>Inserts into one arena tree: the one adapter from a key stream to <see cref="ProfileTree"/>.</summary>
public readonly struct ArenaSink(ProfileTree tree) : IKeySink
{
    public ProfileTree Tree { get; } = tree;

    public void Insert(ReadOnlySpan<byte> key, ulong value) => Tree.Insert(key, value);
}

/// <summary>Inserts into one object-per-node <see cref="BaselineTree"/>.</summary>
public readonly struct BaselineSink(BaselineTree tree) : IKeySink
{
    public BaselineTree Tree { get; } = tree;

    public void Insert(ReadOnlySpan<byte> key, ulong value) => Tree.Insert(key, value);
}
