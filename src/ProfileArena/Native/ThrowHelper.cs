using System.Diagnostics.CodeAnalysis;

namespace ProfileArena.Native;

/// <summary>
/// The throws of the per-call paths (every Insert, every tree lookup), kept out of the methods that
/// check: a <c>throw new …($"…")</c> inline costs the caller the string formatting and exception
/// construction code, which keeps small checks from inlining (the runtime's collections do the same).
/// Messages are the public contract; they live here once. Cold, rare throws stay where they are.
/// </summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void StaleTree() =>
        throw new InvalidOperationException("This ProfileTree was removed from its store (TreeStore.Remove); the handle is no longer valid.");

    [DoesNotReturn]
    public static void DefaultTreeHandle() =>
        throw new InvalidOperationException("This ProfileTree is a default handle: it refers to no tree. Create trees with TreeStore.CreateTree().");

    [DoesNotReturn]
    public static void NoSuchTree(uint id) => throw new ArgumentException($"Tree id {id} does not exist in this store.");

    [DoesNotReturn]
    public static void ReadOnlyStore() =>
        throw new InvalidOperationException("This store was opened read-only from a snapshot file (TreeStore.OpenSnapshot): it cannot be written. Load it with TreeStore.Load to get a writable copy.");

    [DoesNotReturn]
    public static void TotalOverflow(ulong value, ulong total) =>
        throw new OverflowException($"Inserting {value} would overflow the tree's total of {total} (maximum {ulong.MaxValue}); the tree is unchanged.");
}
