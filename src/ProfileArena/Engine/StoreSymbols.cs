using ProfileArena.Native;

namespace ProfileArena.Engine;

/// <summary>Symbol table calls made outside an insert (benchmarks, importers, tests), under the store lock.</summary>
internal static unsafe class StoreSymbols
{
    /// <summary>Interns <paramref name="name"/>: its symbol id.</summary>
    public static uint Intern(StoreLock storeLock, StoreRoot* root, ReadOnlySpan<byte> name)
    {
        using (storeLock.Enter())
            return root->Symbols.FindOrAdd(&root->Memory, name, root->MaxSymbolBytes).Value;
    }

    /// <summary>Looks <paramref name="name"/> up without interning it: its symbol id, or -1.</summary>
    public static long Find(StoreLock storeLock, StoreRoot* root, ReadOnlySpan<byte> name)
    {
        using (storeLock.Enter())
        {
            if (!root->Symbols.HasIndex) root->Symbols.BuildIndex(&root->Memory); // a mapped snapshot's first lookup
            SymbolId id = root->Symbols.Find(name, SymbolTable.Hash(name));
            return id.IsMissing ? -1 : id.Value;
        }
    }

    /// <summary>Distinct names interned by the store.</summary>
    public static long Count(StoreRoot* root) => root->Symbols.Count;

    /// <summary>Bytes of the distinct names interned by the store (lengths summed), read like <see cref="Count"/>:
    /// without the lock, one aligned 64-bit word.</summary>
    public static long NameBytes(StoreRoot* root) => root->Symbols.NameBytes;
}
