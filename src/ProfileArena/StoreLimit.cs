namespace ProfileArena;

/// <summary>The limit a <see cref="StoreLimitExceededException"/> names.</summary>
public enum StoreLimit
{
    /// <summary><see cref="TreeStoreOptions.MaxNodes"/>: nodes in the whole store, roots included.</summary>
    Nodes,
    /// <summary><see cref="TreeStoreOptions.MaxSymbolBytes"/>, or the 32 GiB the name arena can address.</summary>
    SymbolBytes,
    /// <summary><see cref="TreeStoreOptions.MaxNativeBytes"/>: native memory held by the store.</summary>
    NativeBytes,
    /// <summary>32-bit node indices: a single tree holds at most 2^32 − 2 nodes.</summary>
    NodeIndexSpace,
    /// <summary>32-bit symbol ids: a store interns at most 2^32 − 2 distinct names.</summary>
    SymbolIdSpace,
    /// <summary>32-bit tree ids: a store holds at most 2^31 − 1 trees.</summary>
    TreeIdSpace,
    /// <summary><see cref="TreeStoreOptions.MaxStackBytes"/>: bytes in one stack (root-to-node path).</summary>
    StackBytes,
    /// <summary><see cref="TreeStoreOptions.MaxStackFrames"/>: frames in one stack (root-to-node path).</summary>
    StackFrames,
}

/// <summary>
/// Thrown when an operation would exceed a configured cap or an index space. The operation had
/// no effect: the store holds exactly what it held before, and stays usable.
/// </summary>
public sealed class StoreLimitExceededException : InvalidOperationException
{
    /// <summary>Creates the exception for <paramref name="limit"/>.</summary>
    public StoreLimitExceededException(StoreLimit limit, long limitValue, string detail)
        : base($"Store limit {limit} ({limitValue}) reached: {detail}. The store is unchanged.")
    {
        Limit = limit;
        LimitValue = limitValue;
    }

    /// <summary>Which limit was hit.</summary>
    public StoreLimit Limit { get; }

    /// <summary>The value of that limit.</summary>
    public long LimitValue { get; }
}
