using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Azure.Storage.Blobs;
using ProfileArena.Tests.Support;

[assembly: AssemblyFixture(typeof(ProfileArena.Tests.Server.Media.AzuriteFixture))]

namespace ProfileArena.Tests.Server.Media;

/// <summary>
/// One Azurite (npm <c>azurite</c>, installed by <c>npm ci</c> in tests/azurite from its committed lock) for the whole
/// test run, started on first use on free 127.0.0.1 ports with its data in a temp directory, killed at the end.
/// Always <c>--disableTelemetry</c> (without it Azurite calls an outside address) and <c>--skipApiVersionCheck</c>
/// (the SDK sends an API version newer than Azurite knows).
/// </summary>
public sealed class AzuriteFixture : IAsyncDisposable
{
    /// <summary>Azurite's well-known development account key (public, documented by Microsoft).</summary>
    private const string DevKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly SemaphoreSlim _start = new(1, 1);
    private Process? _process;
    private string? _location;
    private string? _connectionString;
    private readonly System.Text.StringBuilder _output = new();

    public static string AzuriteDir => Path.Combine(SharedData.RepoRoot, "tests", "azurite");

    /// <summary>The connection string of the running Azurite (started on first call): its blob and table
    /// endpoints (shard media; Orleans' AzureStorage clustering).</summary>
    public async Task<string> ConnectionStringAsync()
    {
        await _start.WaitAsync();
        try
        {
            return _connectionString ??= await StartAsync();
        }
        finally
        {
            _start.Release();
        }
    }

    /// <summary>A new, empty container of the running Azurite.</summary>
    public async Task<BlobContainerClient> NewContainerAsync()
    {
        var container = new BlobContainerClient(await ConnectionStringAsync(), "t" + Guid.NewGuid().ToString("N")[..20]);
        await container.CreateAsync();
        return container;
    }

    private async Task<string> StartAsync()
    {
        string script = Path.Combine(AzuriteDir, "node_modules", "azurite", "dist", "src", "azurite.js");
        if (!File.Exists(script)) throw new InvalidOperationException($"run `npm ci` in {AzuriteDir} first (.ci/run does)");
        string node = FindOnPath("node") ?? throw new InvalidOperationException("node is not installed (.ci/run installs nodejs with apt-get)");
        _location = Path.Combine(Path.GetTempPath(), "pa-azurite-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_location);
        int blob = FreeLoopbackPort(), queue = FreeLoopbackPort(), table = FreeLoopbackPort();
        var info = new ProcessStartInfo(node)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[]
                 {
                     script, "--silent", "--disableTelemetry", "--skipApiVersionCheck", "--location", _location,
                     "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1",
                     "--blobPort", $"{blob}", "--queuePort", $"{queue}", "--tablePort", $"{table}",
                 })
        {
            info.ArgumentList.Add(arg);
        }
        _process = Process.Start(info) ?? throw new InvalidOperationException("azurite did not start");
        _process.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        string connection = $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DevKey};BlobEndpoint=http://127.0.0.1:{blob}/devstoreaccount1;TableEndpoint=http://127.0.0.1:{table}/devstoreaccount1;";
        var service = new BlobServiceClient(connection);
        for (int attempt = 0; attempt < 150; attempt++) // ≤ 30 s
        {
            if (_process.HasExited) break;
            try
            {
                await service.GetPropertiesAsync();
                return connection;
            }
            catch (Exception e) when (e is Azure.RequestFailedException or HttpRequestException or AggregateException)
            {
                await Task.Delay(200);
            }
        }
        string output;
        lock (_output) output = _output.ToString();
        throw new InvalidOperationException($"azurite did not answer on 127.0.0.1:{blob}:\n{output}");
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try { await _process.WaitForExitAsync(cts.Token); } catch (OperationCanceledException) { }
        }
        _process?.Dispose();
        if (_location != null)
        {
            try { Directory.Delete(_location, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
