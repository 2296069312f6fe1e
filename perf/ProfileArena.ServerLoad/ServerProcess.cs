using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace ProfileArena.ServerLoad;

/// <summary>
/// The measured server as a child process: <c>dotnet ProfileArena.Server.dll --urls http://127.0.0.1:PORT
/// --data-dir DIR --storage ENGINE</c> with a free loopback port and a fresh data directory, its output kept
/// in a log file. Ready once <c>/readyz</c> answers 200 (bounded wait). Stopped with kill (SIGKILL): the data
/// directory is thrown away, so a shutdown snapshot would only add time. Also used by the fault tests.
/// </summary>
public sealed class ServerProcess : IDisposable
{
    private readonly Process _process;

    private ServerProcess(Process process, string url, string dataDir, string logPath)
    {
        _process = process;
        Url = url;
        DataDir = dataDir;
        LogPath = logPath;
    }

    public string Url { get; }
    public string DataDir { get; }
    public string LogPath { get; }
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;

    /// <summary>The server's entry assembly, beside this program (a project reference puts it there).</summary>
    public static string ServerDll => Path.Combine(AppContext.BaseDirectory, "ProfileArena.Server.dll");

    /// <summary>Starts the server and waits until it is ready.</summary>
    /// <param name="engine">arena or baseline.</param>
    /// <param name="dataDir">Data directory (kept as is: pass an empty one for a fresh server, the same one to restart).</param>
    /// <param name="extraArgs">More server arguments (configuration keys).</param>
    /// <param name="readyTimeout">How long replay and start may take.</param>
    /// <param name="environment">Extra environment variables of the child.</param>
    /// <param name="port">Loopback port (0: a free one; a restart passes the previous one).</param>
    public static async Task<ServerProcess> StartAsync(string engine, string dataDir, IEnumerable<string> extraArgs, TimeSpan readyTimeout,
        IReadOnlyDictionary<string, string>? environment = null, int port = 0)
    {
        if (!File.Exists(ServerDll)) throw new FileNotFoundException($"server not found at {ServerDll}");
        Directory.CreateDirectory(dataDir);
        if (port == 0) port = FreePort();
        string url = $"http://127.0.0.1:{port}";
        string log = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(dataDir))!, Path.GetFileName(Path.GetFullPath(dataDir)) + $".{engine}.{DateTime.UtcNow:HHmmssfff}.log");
        var start = new ProcessStartInfo
        {
            FileName = DotnetHost(),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(ServerDll);
        foreach (string a in new[] { "--urls", url, "--data-dir", dataDir, "--storage", engine }.Concat(extraArgs)) start.ArgumentList.Add(a);
        if (environment != null)
        {
            foreach (var (k, v) in environment) start.Environment[k] = v;
        }
        Process process = Process.Start(start) ?? throw new InvalidOperationException("Process.Start returned no process");
        var writer = new StreamWriter(log) { AutoFlush = true };
        var gate = new Lock();
        void Line(string? l)
        {
            if (l == null) return;
            lock (gate) writer.WriteLine(l);
        }
        process.OutputDataReceived += (_, e) => Line(e.Data);
        process.ErrorDataReceived += (_, e) => Line(e.Data);
        process.Exited += (_, _) =>
        {
            lock (gate) writer.Flush();
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new ServerProcess(process, url, dataDir, log);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < readyTimeout)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"the server exited with code {process.ExitCode} before it was ready; log: {log}\n{Tail(log)}");
            try
            {
                using HttpResponseMessage r = await http.GetAsync(url + "/readyz");
                if (r.StatusCode == HttpStatusCode.OK) return server;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(100);
        }
        server.Dispose();
        throw new TimeoutException($"the server was not ready within {readyTimeout.TotalSeconds:0} s; log: {log}\n{Tail(log)}");
    }

    /// <summary>Resident set size of the server now, from /proc (0 once it exited).</summary>
    public long RssBytes()
    {
        try
        {
            foreach (string line in File.ReadLines($"/proc/{Pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (IOException) { }
        return 0;
    }

    /// <summary>SIGKILL (kill -9): no flush, no snapshot.</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(30_000);
        }
        catch (InvalidOperationException) { }
    }

    /// <summary>SIGTERM: the server finishes queued writes and snapshots; waits up to <paramref name="timeout"/>.</summary>
    public bool Terminate(TimeSpan timeout)
    {
        if (_process.HasExited) return true;
        using (Process.Start("kill", ["-TERM", Pid.ToString(CultureInfo.InvariantCulture)])) { }
        return _process.WaitForExit(timeout);
    }

    public int ExitCode => _process.ExitCode;

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    /// <summary>A port free on 127.0.0.1 right now (the OS picks it).</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>The last lines of the server's log.</summary>
    public static string Tail(string log, int lines = 15)
    {
        try
        {
            using var stream = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            var all = reader.ReadToEnd().Split('\n');
            return string.Join('\n', all.TakeLast(lines));
        }
        catch (IOException)
        {
            return "";
        }
    }

    private static string DotnetHost()
    {
        string? self = Environment.ProcessPath;
        if (self != null && Path.GetFileNameWithoutExtension(self).Equals("dotnet", StringComparison.OrdinalIgnoreCase)) return self;
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host)) return host;
        if (Environment.GetEnvironmentVariable("DOTNET_ROOT") is { Length: > 0 } root && File.Exists(Path.Combine(root, "dotnet"))) return Path.Combine(root, "dotnet");
        return "dotnet";
    }
}
