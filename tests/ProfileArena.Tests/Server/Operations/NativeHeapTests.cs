using System.Runtime.InteropServices;
using ProfileArena.Server.Operations;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Server.Operations;

/// <summary>The C-heap policy the server applies (glibc): freed holes go back to the system on Trim.
/// Runs alone: it reads the process's resident anonymous memory.</summary>
[Collection(nameof(ProcessNativeMemory))]
public sealed class NativeHeapTests
{
    [Fact]
    public void GlibcIsFoundOnThisLinuxMachine()
    {
        Assert.True(OperatingSystem.IsLinux());
        Assert.True(NativeHeap.Available, "the server's RSS policy needs glibc's malloc_trim and mallopt");
    }

    [Fact]
    public void TrimReturnsTheFreedHolesOfTheHeap()
    {
        // 256 MiB of 64 KiB blocks (below glibc's mmap threshold: they come from the heap, as store slabs do),
        // every page touched; then all but every 32nd freed, so the free space sits in holes between live
        // blocks that free() cannot give back (it trims only a heap's top).
        const int blocks = 4096, size = 64 << 10;
        var pointers = new nint[blocks];
        byte[] pattern = new byte[size];
        Array.Fill(pattern, (byte)0xA5);
        for (int i = 0; i < blocks; i++)
        {
            pointers[i] = Marshal.AllocHGlobal(size); // malloc on Unix
            Marshal.Copy(pattern, 0, pointers[i], size);
        }
        try
        {
            for (int i = 0; i < blocks; i++)
            {
                if (i % 32 == 0) continue;
                Marshal.FreeHGlobal(pointers[i]);
                pointers[i] = 0;
            }
            long beforeTrim = ResidentAnonymousBytes();
            NativeHeap.Trim();
            long afterTrim = ResidentAnonymousBytes();
            long freed = (long)blocks * 31 / 32 * size;
            Assert.True(beforeTrim - afterTrim >= freed / 2,
                $"RSS (anonymous) {beforeTrim >> 20} MiB before trim, {afterTrim >> 20} MiB after; {freed >> 20} MiB were freed in holes");
        }
        finally
        {
            foreach (nint p in pointers) if (p != 0) Marshal.FreeHGlobal(p);
        }
    }

    private static long ResidentAnonymousBytes()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("RssAnon:", StringComparison.Ordinal))
                return long.Parse(line.AsSpan(8).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture) * 1024;
        throw new InvalidOperationException("/proc/self/status has no RssAnon line");
    }
}
