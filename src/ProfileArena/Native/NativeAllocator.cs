using System.Diagnostics;
using System.Runtime.InteropServices;

namespace ProfileArena.Native;

/// <summary>
/// The only place a store's native memory is allocated and freed. It keeps the byte count that
/// <see cref="TreeStore.NativeBytes"/> reports and enforces the native-memory budget before the
/// allocation happens, so a refused allocation changes nothing.
/// </summary>
/// <remarks>Lives inside <see cref="StoreRoot"/>; always used through a pointer so that every structure
/// of the store charges the same counter. Counters are updated with interlocked operations because
/// writers on different trees allocate concurrently.</remarks>
internal unsafe struct NativeAllocator
{
    private static long s_processBytes;

    public long Bytes;
    public long Budget;
    public HugePagePool Pool;

    /// <summary>Bytes held from NativeMemory by every live store in this process.</summary>
    public static long ProcessBytes => Volatile.Read(ref s_processBytes);

    public static void* Alloc(NativeAllocator* a, nuint bytes, bool zeroed = true)
    {
        Debug.Assert(bytes > 0);
        if (HugePagePool.Serves(bytes) && Volatile.Read(ref a->Bytes) >= HugePagePool.Threshold)
        {
            void* slab = a->Pool.Take(bytes, a);
            if (zeroed) NativeMemory.Clear(slab, bytes);
            return slab;
        }
        return AllocSystem(a, bytes, zeroed);
    }


    /// <summary>
    /// Takes <paramref name="bytes"/> from the system against the budget. Blocks of 2 MiB and more are
    /// 2 MiB-aligned and advised as huge pages (see <see cref="HugePagePool"/>); their size tells
    /// <see cref="FreeSystem"/> to release them with AlignedFree.
    /// </summary>
    internal static void* AllocSystem(NativeAllocator* a, nuint bytes, bool zeroed, bool restoring = false)
    {
        long size = checked((long)bytes);
        long after = Interlocked.Add(ref a->Bytes, size);
        if (after > a->Budget && !restoring)
        {
            Interlocked.Add(ref a->Bytes, -size);
            throw new StoreLimitExceededException(StoreLimit.NativeBytes, a->Budget,
                $"allocating {size} bytes would take the store to {after} native bytes, over its budget of {a->Budget} (TreeStoreOptions.MaxNativeBytes)");
        }
        void* p;
        try
        {
            if (bytes >= HugePagePool.BlockBytes)
            {
                p = NativeMemory.AlignedAlloc(bytes, HugePagePool.BlockBytes);
                HugePagePool.AdviseHugePages(p, bytes);
                if (zeroed) NativeMemory.Clear(p, bytes);
            }
            else
            {
                p = zeroed ? NativeMemory.AllocZeroed(bytes) : NativeMemory.Alloc(bytes);
            }
        }
        catch
        {
            Interlocked.Add(ref a->Bytes, -size);
            throw;
        }
        Interlocked.Add(ref s_processBytes, size);
        return p;
    }

    /// <summary>
    /// Undoing a refused write: re-allocates a structure at the smaller size it had before the write
    /// grew it (the grown one is freed right after). It held that size within the budget before, so
    /// the budget is not checked (the overshoot lasts until the grown block is freed), and it comes
    /// from the system, not the huge-page pool, so no pool block is taken.
    /// </summary>
    public static void* AllocRestoring(NativeAllocator* a, nuint bytes, bool zeroed) => AllocSystem(a, bytes, zeroed, restoring: true);

    public static void Free(NativeAllocator* a, void* p, nuint bytes)
    {
        if (p == null) return;
        if (HugePagePool.Serves(bytes) && a->Pool.Owns(p))
        {
            a->Pool.Return(p, bytes); // stays charged to the store, reused by its next slab of this size
            return;
        }
        FreeSystem(a, p, bytes);
    }

    internal static void FreeSystem(NativeAllocator* a, void* p, nuint bytes)
    {
        if (bytes >= HugePagePool.BlockBytes) NativeMemory.AlignedFree(p);
        else NativeMemory.Free(p);
        Interlocked.Add(ref a->Bytes, -(long)bytes);
        Interlocked.Add(ref s_processBytes, -(long)bytes);
    }

    /// <summary>Returns the pool's blocks to the system: the last step of destroying a store.</summary>
    public static void ReleasePool(NativeAllocator* a) => a->Pool.Release(a);

    /// <summary>Transient scratch (Iterate stacks) is charged to the process counter only, while held.</summary>
    public static void* AllocScratch(nuint bytes)
    {
        void* p = NativeMemory.Alloc(bytes);
        Interlocked.Add(ref s_processBytes, (long)bytes);
        return p;
    }

    public static void* ReallocScratch(void* p, nuint oldBytes, nuint newBytes)
    {
        void* q = NativeMemory.Realloc(p, newBytes);
        Interlocked.Add(ref s_processBytes, (long)newBytes - (long)oldBytes);
        return q;
    }

    public static void FreeScratch(void* p, nuint bytes)
    {
        if (p == null) return;
        NativeMemory.Free(p);
        Interlocked.Add(ref s_processBytes, -(long)bytes);
    }
}
