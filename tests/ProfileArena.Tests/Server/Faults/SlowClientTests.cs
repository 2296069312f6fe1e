using System.Net;
using System.Net.Sockets;
using System.Text;
using ProfileArena.Tests.Server.Storage;

namespace ProfileArena.Tests.Server.Faults;

/// <summary>
/// Slow and broken clients (issue 12): while 300 idle connections sit open and three clients trickle bodies one
/// byte at a time, a normal client's pushes and queries all succeed; clients that disconnect mid-body and the
/// tricklers (cut by Kestrel's minimum body data rate) store nothing. The server's holdings are checked push
/// by push against what was acknowledged.
/// </summary>
public sealed class SlowClientTests
{
    [Fact]
    public async Task Trickling_idle_and_disconnecting_clients_neither_starve_others_nor_change_data()
    {
        using var dir = new TempDataDir();
        using ChildServer server = await ChildServer.Start(dir.Path);
        var uri = new Uri(server.Url);
        var ledger = new PushLedger();
        var random = new Random(3);
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        for (int i = 0; i < 10; i++) Assert.Equal(HttpStatusCode.OK, await ledger.Push(server.Client, random, now - 30 * i));

        var idle = new List<TcpClient>();
        try
        {
            for (int i = 0; i < 300; i++)
            {
                var c = new TcpClient();
                await c.ConnectAsync(IPAddress.Loopback, uri.Port, TestContext.Current.CancellationToken);
                idle.Add(c);
            }
            // Tricklers: headers, then one byte every 100 ms of a body that would be a real push (at most 150 bytes, then give up).
            using var stopTrickle = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            Task[] tricklers = [.. Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
            {
                var (_, body) = ledger.Next(new Random(), 8);
                await Trickle(uri.Port, body, stopTrickle.Token);
            }))];
            // Disconnecting clients: half a body, then close.
            for (int i = 0; i < 5; i++)
            {
                var (_, body) = ledger.Next(random, 30);
                byte[] bytes = Encoding.UTF8.GetBytes(body);
                using var c = new TcpClient();
                await c.ConnectAsync(IPAddress.Loopback, uri.Port, TestContext.Current.CancellationToken);
                NetworkStream s = c.GetStream();
                await s.WriteAsync(Headers(bytes.Length, now), TestContext.Current.CancellationToken);
                await s.WriteAsync(bytes.AsMemory(0, bytes.Length / 2), TestContext.Current.CancellationToken);
                await s.FlushAsync(TestContext.Current.CancellationToken);
                c.Client.Close(0);
            }
            // The normal client meanwhile.
            using var normal = new HttpClient { BaseAddress = uri, Timeout = TimeSpan.FromSeconds(30) };
            for (int i = 0; i < 20; i++)
            {
                Assert.Equal(HttpStatusCode.OK, await ledger.Push(normal, random, now - random.Next(3600)));
                var (status, text) = await Api.Get(normal, $"/render?query={Uri.EscapeDataString(PushLedger.Series + "{}")}&from=now-1h&until=now&format=json");
                Assert.True(status == HttpStatusCode.OK, $"render during slow clients: {(int)status} {text}");
            }
            await Task.WhenAll(tricklers);
            await ledger.Verify(normal, "after slow, idle and disconnecting clients");
            Assert.Equal(30, ledger.Acknowledged);
        }
        finally
        {
            foreach (TcpClient c in idle) c.Dispose();
        }
    }

    private static byte[] Headers(int length, long now) => Encoding.ASCII.GetBytes(
        $"POST /ingest?name={Uri.EscapeDataString(PushLedger.Series + "{test=faults}")}&from={now - 10}&until={now} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\n\r\n");

    private static async Task Trickle(int port, string body, CancellationToken stop)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(body);
        using var c = new TcpClient();
        await c.ConnectAsync(IPAddress.Loopback, port);
        NetworkStream s = c.GetStream();
        try
        {
            await s.WriteAsync(Headers(bytes.Length, DateTimeOffset.UtcNow.ToUnixTimeSeconds()), stop);
            for (int i = 0; i < Math.Min(150, bytes.Length - 1) && !stop.IsCancellationRequested; i++)
            {
                await s.WriteAsync(bytes.AsMemory(i, 1), stop);
                await Task.Delay(100, stop);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
        {
            // Kestrel cut the connection (minimum data rate) or the time bound ended the trickle.
        }
    }
}
