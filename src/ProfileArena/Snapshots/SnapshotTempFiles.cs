using System.Diagnostics;
using System.Globalization;

namespace ProfileArena.Snapshots;

/// <summary>
/// The temporary files of <see cref="TreeStore.SaveToFile"/>: <c>.&lt;name&gt;.&lt;pid&gt;.&lt;32 hex&gt;.tmp</c> beside the
/// target. A save killed before its rename (kill -9, power loss) leaves one; the next save or open of
/// the same target removes those whose writer is gone.
/// </summary>
/// <remarks>
/// A temp file is removed only when all of these hold: its name is exactly the pattern above for
/// this target (nothing else in the directory is touched); its process id is not a running process
/// (live savers, this process included, are left alone); and it can be opened with an exclusive
/// lock — a writer holds one (FileShare.None takes flock(LOCK_EX) on Unix) until it closes, and the
/// kernel drops it when the writer dies, so a saver in another PID namespace is not mistaken for
/// a dead one. Removal is best effort: a failure to clean never fails the save or open.
/// </remarks>
internal static class SnapshotTempFiles
{
    public static string PathFor(string fullTarget) =>
        Path.Combine(Path.GetDirectoryName(fullTarget)!, $".{Path.GetFileName(fullTarget)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");

    /// <summary>Removes stale temp files of <paramref name="fullTarget"/>; returns how many.</summary>
    public static int RemoveStale(string fullTarget)
    {
        int removed = 0;
        try
        {
            string? dir = Path.GetDirectoryName(fullTarget);
            if (dir == null || !Directory.Exists(dir)) return 0;
            string prefix = "." + Path.GetFileName(fullTarget) + ".";
            foreach (string file in Directory.EnumerateFiles(dir, prefix + "*.tmp"))
            {
                if (!TryParse(Path.GetFileName(file), prefix, out int pid) || IsRunning(pid)) continue;
                if (TryRemoveUnlocked(file)) removed++;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: an unreadable directory leaves the temp files for a later attempt.
        }
        return removed;
    }

    /// <summary><c>prefix</c> + decimal pid + '.' + 32 lowercase hex + ".tmp", nothing else.</summary>
    internal static bool TryParse(string name, string prefix, out int pid)
    {
        pid = 0;
        if (!name.StartsWith(prefix, StringComparison.Ordinal) || !name.EndsWith(".tmp", StringComparison.Ordinal)) return false;
        ReadOnlySpan<char> rest = name.AsSpan(prefix.Length, name.Length - prefix.Length - 4);
        int dot = rest.IndexOf('.');
        if (dot <= 0 || rest.Length - dot - 1 != 32) return false;
        foreach (char c in rest[(dot + 1)..])
            if (!char.IsAsciiHexDigitLower(c) && !char.IsAsciiDigit(c)) return false;
        foreach (char c in rest[..dot])
            if (!char.IsAsciiDigit(c)) return false;
        return int.TryParse(rest[..dot], NumberStyles.None, CultureInfo.InvariantCulture, out pid) && pid > 0;
    }

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false; // no such process
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static bool TryRemoveUnlocked(string file)
    {
        try
        {
            // Held exclusively while it is deleted: a writer that still had it open would have made this throw.
            using var probe = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
