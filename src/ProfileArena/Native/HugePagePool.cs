using System.Diagnostics;
using System.Runtime.InteropServices;

namespace ProfileArena.Native;

/// <summary>
/// Serves the slab sizes a large store is made of — 64 KiB (name-arena chunks, full symbol-entry
/// slabs) and 256 KiB (full node slabs) — from 2 MiB blocks advised as transparent huge pages.
/// </summary>
/// <remarks>
/// Why: building a tree writes fresh memory, and each first touch of a 4 KiB page is a page fault;
/// on this VM kind faults were about a third of the take-home build (perf/README.md). A 2 MiB
/// huge page takes one fault for 512 pages. Linux only maps huge pages into 2 MiB-aligned ranges
/// advised with MADV_HUGEPAGE (the machine's setting is "madvise"), which malloc'd slabs are not.
/// <para>Only stores that already hold <see cref="Threshold"/> bytes use the pool, so a small store
/// never reserves a 2 MiB block. A whole block is charged to the store when it is taken; a slab
/// given back (tree removed or cleared, a rolled-back name batch) goes on a free list for its size
/// and is reused by the store, and blocks return to the system with the store.</para>
/// <para>Thread safety: writers of different trees allocate node slabs concurrently, so the pool
/// has its own spin lock (held for a pointer bump or a list pop, never for a system call).</para>
/// </remarks>
internal unsafe struct HugePagePool
{
    public const nuint Small = 64 * 1024;
    public const nuint Large = 256 * 1024;
    public const nuint BlockBytes = 2 * 1024 * 1024;
    public const long Threshold = 4L * 1024 * 1024;

    private int _lock;
    private byte* _block;        // newest block
    private nuint _blockUsed;    // bytes handed out from it
    private void* _freeSmall;    // free lists, linked through each free slab's first 8 bytes
    private void* _freeLarge;
    private nint* _blocks;       // every block, for Owns and Release
    private int _blockCount;
    private int _blockCapacity;

    public static bool Serves(nuint bytes) => bytes == Small || bytes == Large;

    /// <summary>A slab of <paramref name="bytes"/> (Small or Large); a new block comes from
    /// <paramref name="memory"/>'s system allocation, which throws if the budget refuses it. The caller zeroes.</summary>
    public void* Take(nuint bytes, NativeAllocator* memory)
    {
        Debug.Assert(Serves(bytes));
        Enter();
        try
        {
            ref void* free = ref (bytes == Small ? ref _freeSmall : ref _freeLarge);
            if (free != null)
            {
                void* p = free;
                free = *(void**)p;
                return p;
            }
            if (_block == null || _blockUsed + bytes > BlockBytes)
            {
                EnsureBlockListRoom(); // before taking the block, so a failure here leaks nothing
                var block = (byte*)NativeAllocator.AllocSystem(memory, BlockBytes, zeroed: false);
                _blocks[_blockCount++] = (nint)block;
                // The old block's tail becomes small slabs rather than waste.
                while (_block != null && _blockUsed + Small <= BlockBytes)
                {
                    Give(_block + _blockUsed, Small);
                    _blockUsed += Small;
                }
                _block = block;
                _blockUsed = 0;
            }
            void* slab = _block + _blockUsed;
            _blockUsed += bytes;
            return slab;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>True if <paramref name="p"/> lies in one of the pool's blocks.</summary>
    public bool Owns(void* p)
    {
        Enter();
        try
        {
            for (int i = 0; i < _blockCount; i++)
                if ((byte*)p >= (byte*)_blocks[i] && (byte*)p < (byte*)_blocks[i] + BlockBytes) return true;
            return false;
        }
        finally
        {
            Exit();
        }
    }

    public void Return(void* p, nuint bytes)
    {
        Enter();
        try { Give(p, bytes); }
        finally { Exit(); }
    }

    private void Give(void* p, nuint bytes)
    {
        ref void* free = ref (bytes == Small ? ref _freeSmall : ref _freeLarge);
        *(void**)p = free;
        free = p;
    }

    private void EnsureBlockListRoom()
    {
        if (_blockCount < _blockCapacity) return;
        int capacity = Math.Max(16, _blockCapacity * 2);
        _blocks = (nint*)NativeMemory.Realloc(_blocks, (nuint)capacity * (nuint)sizeof(nint));
        _blockCapacity = capacity;
    }

    /// <summary>Returns every block to the system (store destruction). Never throws.</summary>
    public void Release(NativeAllocator* memory)
    {
        for (int i = 0; i < _blockCount; i++) NativeAllocator.FreeSystem(memory, (void*)_blocks[i], BlockBytes);
        NativeMemory.Free(_blocks);
        this = default;
    }

    private void Enter()
    {
        var spin = new SpinWait();
        while (Interlocked.CompareExchange(ref _lock, 1, 0) != 0) spin.SpinOnce();
    }

    private void Exit() => Volatile.Write(ref _lock, 0);

    /// <summary>Advises the kernel to back [p, p + bytes) with huge pages (Linux; a no-op elsewhere).</summary>
    public static void AdviseHugePages(void* p, nuint bytes)
    {
        if (OperatingSystem.IsLinux()) _ = madvise(p, bytes, MadvHugePage);
    }

    private const int MadvHugePage = 14;

    [DllImport("libc", EntryPoint = "madvise")]
    private static extern int madvise(void* addr, nuint length, int advice);
}
