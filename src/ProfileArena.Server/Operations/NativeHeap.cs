using System.Diagnostics;
using System.Runtime.InteropServices;

namespace ProfileArena.Server.Operations;

/// <summary>
/// The process's C heap (glibc malloc), which the stores' small slabs and tables come from
/// (<c>NativeMemory.Alloc</c>). Two policies keep the server's RSS close to the bytes it holds:
/// <list type="bullet">
/// <item><see cref="LimitArenas"/> at start: glibc gives each thread that meets a locked arena its own 64 MiB
/// arena (up to 8 per core); the ingest and query threads free into all of them, and each arena keeps its
/// freed holes. A 5-minute soak (perf/README "Server load", RSS) measured 983 MiB RSS for 236 MiB of store
/// bytes by default and 533 MiB with two arenas.</item>
/// <item><see cref="Trim"/> after retention removed trees: <c>malloc_trim(0)</c> hands the whole free pages of
/// every arena back to the system (<c>MADV_DONTNEED</c>), which free() alone does only at an arena's top.</item>
/// </list>
/// Both are glibc calls; elsewhere (musl, macOS, Windows) they are skipped and <see cref="Available"/> is false.
/// Thread safety: glibc serialises both internally; <see cref="Trim"/> holds each arena's lock while it walks it.
/// </summary>
public static class NativeHeap
{
    private const int MArenaMax = -8; // glibc <malloc.h>: M_ARENA_MAX

    private static readonly bool s_glibc = OperatingSystem.IsLinux() && HasGlibc();

    /// <summary>True where the glibc calls exist (Linux with glibc).</summary>
    public static bool Available => s_glibc;

    /// <summary>Caps glibc's malloc arenas at <paramref name="arenas"/> (≥ 1); call once, early, before the
    /// threads that allocate start. Returns false where unavailable or refused.</summary>
    public static bool LimitArenas(int arenas)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(arenas, 1);
        return s_glibc && mallopt(MArenaMax, arenas) == 1;
    }

    /// <summary>Returns the C heap's free pages to the system; the time it took (zero where unavailable).</summary>
    public static TimeSpan Trim()
    {
        if (!s_glibc) return TimeSpan.Zero;
        long start = Stopwatch.GetTimestamp();
        malloc_trim(0);
        return Stopwatch.GetElapsedTime(start);
    }

    private static bool HasGlibc()
    {
        try
        {
            return gnu_get_libc_version() != 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [DllImport("libc", EntryPoint = "gnu_get_libc_version", ExactSpelling = true)]
    private static extern nint gnu_get_libc_version();

    [DllImport("libc", EntryPoint = "mallopt", ExactSpelling = true)]
    private static extern int mallopt(int param, int value);

    [DllImport("libc", EntryPoint = "malloc_trim", ExactSpelling = true)]
    private static extern int malloc_trim(nuint pad);
}
