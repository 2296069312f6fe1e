using System.Diagnostics;
using System.Net.Sockets;
using ProfileArena.ServerLoad;

namespace ProfileArena.ClusterPerf;

/// <summary>
/// Debian's <c>redis-server</c> as the cluster's membership store, on a free loopback port, with nothing
/// persisted (<c>--save '' --appendonly no</c>): membership is rebuilt by the silos at every start. Its log goes to a file.
/// Killed (and waited for) on dispose.
/// </summary>
public sealed class RedisProcess(Process process, int port) : IDisposable
{
    public int Port => port;

    /// <summary>StackExchange.Redis connection string of this instance.</summary>
    public string ConnectionString => $"127.0.0.1:{port}";

    /// <summary>Starts redis-server and waits (bounded) until its port accepts connections.</summary>
    public static async Task<RedisProcess> StartAsync(string logFile, TimeSpan timeout)
    {
        int free = ServerProcess.FreePort();
        var start = new ProcessStartInfo
        {
            FileName = "redis-server",
            UseShellExecute = false,
        };
        foreach (string a in new[] { "--port", free.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--logfile", logFile })
            start.ArgumentList.Add(a);
        Process child;
        try
        {
            child = Process.Start(start) ?? throw new InvalidOperationException("Process.Start returned no process");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("redis-server not found: apt-get install -y redis-server", e);
        }
        var redis = new RedisProcess(child, free);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (child.HasExited) throw new InvalidOperationException($"redis-server exited with code {child.ExitCode}");
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(System.Net.IPAddress.Loopback, free);
                return redis;
            }
            catch (SocketException) { }
            await Task.Delay(50);
        }
        redis.Dispose();
        throw new TimeoutException($"redis-server did not accept connections on 127.0.0.1:{free} within {timeout.TotalSeconds:0} s");
    }

    public void Dispose()
    {
        using (process)
        {
            if (!process.HasExited) process.Kill();
            process.WaitForExit(10_000);
        }
    }
}
