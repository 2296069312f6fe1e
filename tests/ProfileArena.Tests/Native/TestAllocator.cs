using System.Runtime.InteropServices;
using ProfileArena.Native;

namespace ProfileArena.Tests.Native;

/// <summary>
/// A <see cref="NativeAllocator"/> at a stable native address, as a store's root holds one, for tests that
/// drive the native types directly. Dispose releases its huge-page pool and frees it; tests check
/// <see cref="Bytes"/> to see that a structure gave back exactly what it took.
/// </summary>
internal sealed unsafe class TestAllocator : IDisposable
{
    public NativeAllocator* Memory { get; private set; }

    public TestAllocator(long budget = long.MaxValue)
    {
        Memory = (NativeAllocator*)NativeMemory.AllocZeroed((nuint)sizeof(NativeAllocator));
        Memory->Budget = budget;
    }

    public long Bytes => Memory->Bytes;

    public void Dispose()
    {
        if (Memory == null) return;
        NativeAllocator.ReleasePool(Memory);
        NativeMemory.Free(Memory);
        Memory = null;
    }
}
