using System.Diagnostics;

namespace ProfileArena.Cli.Measurement;

internal static class ProcessMemory
{
    /// <summary>Peak resident set size of this process: VmHWM from /proc/self/status on Linux
    /// (covers native memory too), else the runtime's peak working set.</summary>
    public static long PeakRssBytes()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
            {
                if (!line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    continue;
                string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length >= 3 && parts[2] == "kB" && long.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out long kib))
                    return kib * 1024;
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        using Process self = Process.GetCurrentProcess();
        return self.PeakWorkingSet64;
    }
}
