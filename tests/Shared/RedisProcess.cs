using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace ProfileArena.Processes;

/// <summary>
/// Debian's <c>redis-server</c> as a cluster's membership store, on a free loopback port, with nothing persisted
/// (<c>--save '' --appendonly no</c>: membership is rebuilt by the silos at every start). Killed (and waited for)
/// on dispose. One source file compiled into the tests (RedisClusterTests) and perf/ProfileArena.ClusterPerf
/// (<c>&lt;Compile Include Link&gt;</c>), so neither references the other and the launcher exists once.
/// </summary>
public sealed class RedisProcess : IDisposable
{
    private static readonly string[] Binaries = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"];
    private readonly Process _process;

    private RedisProcess(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    /// <summary>StackExchange.Redis connection string of this instance.</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    /// <summary>Starts redis-server and waits (bounded by <paramref name="timeout"/>) until its port accepts connections.</summary>
    /// <param name="logFile">Where redis writes its log; null: its output is read and dropped.</param>
    /// <param name="timeout">How long it may take to listen.</param>
    /// <param name="cancellationToken">Stops the wait.</param>
    /// <exception cref="InvalidOperationException">redis-server is missing or exited.</exception>
    /// <exception cref="TimeoutException">It did not listen in time.</exception>
    public static async Task<RedisProcess> StartAsync(string? logFile, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        string binary = Binaries.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("redis-server is missing: `apt-get install -y redis-server` (.ci/run installs it)");
        int port = FreeLoopbackPort();
        var start = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardOutput = logFile is null, RedirectStandardError = logFile is null };
        foreach (string arg in new[] { "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no" })
            start.ArgumentList.Add(arg);
        if (logFile is not null)
        {
            start.ArgumentList.Add("--logfile");
            start.ArgumentList.Add(logFile);
        }
        Process process = Process.Start(start) ?? throw new InvalidOperationException("Process.Start returned no process for redis-server");
        if (logFile is null)
        {
            // Read and dropped: a full pipe would block the server.
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }
        var redis = new RedisProcess(process, port);
        try
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < timeout)
            {
                if (process.HasExited) throw new InvalidOperationException($"redis-server exited with code {process.ExitCode}");
                try
                {
                    using var client = new TcpClient();
                    await client.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
                    return redis;
                }
                catch (SocketException)
                {
                    await Task.Delay(50, cancellationToken);
                }
            }
            throw new TimeoutException($"redis-server did not accept connections on 127.0.0.1:{port} within {timeout.TotalSeconds:0} s");
        }
        catch
        {
            redis.Dispose();
            throw;
        }
    }

    /// <summary>A loopback port free at this instant (the OS picks it).</summary>
    public static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        using (_process)
        {
            if (!_process.HasExited) _process.Kill();
            _process.WaitForExit(10_000);
        }
    }
}
