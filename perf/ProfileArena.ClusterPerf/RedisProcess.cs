using System.Diagnostics;
using System.Net.Sockets;
using ProfileArena.ServerLoad;

namespace ProfileArena.ClusterPerf;

/// <summary>
/// Debian's <c>redis-server</c> as the cluster's membership store, on a free loopback port, with nothing
/// persisted (<c>--save '' --appendonly no</c>): membership is rebuilt by the silos at every start.
/// Killed (and waited for) on dispose.
/// </summary>
public sealed class RedisProcess : IDisposable
{
    private readonly Process _process;

    private RedisProcess(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    /// <summary>StackExchange.Redis connection string of this instance.</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    /// <summary>Starts redis-server and waits (bounded) until its port accepts connections.</summary>
    public static async Task<RedisProcess> StartAsync(TimeSpan timeout)
    {
        int port = ServerProcess.FreePort();
        var start = new ProcessStartInfo
        {
            FileName = "redis-server",
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in new[] { "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no" })
            start.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("Process.Start returned no process");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("redis-server not found: apt-get install -y redis-server", e);
        }
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var redis = new RedisProcess(process, port);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (process.HasExited) throw new InvalidOperationException($"redis-server exited with code {process.ExitCode}");
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(System.Net.IPAddress.Loopback, port);
                return redis;
            }
            catch (SocketException) { }
            await Task.Delay(50);
        }
        redis.Dispose();
        throw new TimeoutException($"redis-server did not accept connections on 127.0.0.1:{port} within {timeout.TotalSeconds:0} s");
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill();
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
