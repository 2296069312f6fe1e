using System.Runtime.InteropServices;

namespace ProfileArena.Cli.Commands;

/// <summary>
/// Writes a command's output to "-" (stdout) or a path. A regular file (or a new one) is written to a
/// temporary file beside it and renamed over it, so a failed write leaves the old file and no temporary;
/// a symbolic link is resolved first, so the file it points to is replaced and the link stays. Anything
/// else that exists — a device such as /dev/full or /dev/null, a FIFO, a socket — is opened and written
/// straight, never replaced; a failed write there is an IOException (exit code 1).
/// </summary>
internal static class OutputFile
{
    public static void Write(string path, Action<Stream> write)
    {
        if (path == "-")
        {
            using Stream stdout = Console.OpenStandardOutput();
            write(stdout);
            return;
        }
        var info = new FileInfo(path);
        string target = info.LinkTarget is null ? path : info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path;
        switch (UnixFileType.Of(target))
        {
            case FileKind.Directory:
                throw new IOException($"{path} is a directory");
            case FileKind.Other:
                using (var stream = new FileStream(target, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0))
                {
                    write(stream);
                    stream.Flush();
                }
                return;
            default:
                string tmp = target + ".tmp";
                try
                {
                    using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
                    {
                        write(stream);
                        stream.Flush(flushToDisk: false);
                    }
                    File.Move(tmp, target, overwrite: true);
                }
                catch
                {
                    File.Delete(tmp);
                    throw;
                }
                return;
        }
    }
}

internal enum FileKind { Missing, Regular, Directory, Other }

/// <summary>The type of a file, following symbolic links: .NET exposes no file type on Unix (FileAttributes
/// says Normal for a device or a FIFO), so this asks the kernel with statx(2).</summary>
/// <remarks>Interop only, no unsafe code: the statx buffer is a managed byte array pinned by the marshaller.
/// statx's layout is the same on every architecture (stx_mode is a u16 at byte 28).</remarks>
internal static class UnixFileType
{
    private const int AtFdCwd = -100, StatxType = 1, StatxModeOffset = 28, FormatMask = 0xF000, Regular = 0x8000, DirectoryMode = 0x4000;

    [DllImport("libc", SetLastError = true, EntryPoint = "statx")]
    private static extern int Statx(int dirFd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);

    public static FileKind Of(string path)
    {
        if (!OperatingSystem.IsLinux())
            return Directory.Exists(path) ? FileKind.Directory : File.Exists(path) ? FileKind.Regular : FileKind.Missing;
        byte[] buffer = new byte[256];
        if (Statx(AtFdCwd, path, 0, StatxType, buffer) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == 2 /* ENOENT */) return FileKind.Missing;
            throw new IOException($"{path}: cannot stat ({Marshal.GetPInvokeErrorMessage(errno)})");
        }
        int mode = BitConverter.ToUInt16(buffer, StatxModeOffset) & FormatMask;
        return mode switch
        {
            Regular => FileKind.Regular,
            DirectoryMode => FileKind.Directory,
            _ => FileKind.Other,
        };
    }
}
