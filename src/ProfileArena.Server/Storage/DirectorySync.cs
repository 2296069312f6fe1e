using System.Runtime.InteropServices;

namespace ProfileArena.Server.Storage;

/// <summary>
/// fsync of a directory, so that a file created, renamed or deleted in it survives a crash (POSIX makes
/// the entry durable only then). .NET has no API for it; on Linux and macOS this opens the directory
/// read-only and calls fsync(2) through libc (no pointers involved). Elsewhere it does nothing.
/// </summary>
internal static partial class DirectorySync
{
    /// <summary>Makes the entries of <paramref name="directory"/> durable.</summary>
    /// <exception cref="IOException">open or fsync failed.</exception>
    public static void Flush(string directory)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        int fd = Open(directory, 0 /* O_RDONLY */);
        if (fd < 0) throw new IOException($"cannot open directory {directory} to fsync it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (Fsync(fd) != 0) throw new IOException($"fsync of directory {directory} failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern int Open(string path, int flags);

    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static extern int Fsync(int fd);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);
}
