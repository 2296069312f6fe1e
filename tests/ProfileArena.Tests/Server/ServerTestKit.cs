using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ProfileArena.Server.Cluster;
using ProfileArena.Server.Hosting;
using ProfileArena.Server.Storage;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Server;

/// <summary>
/// The real server in this process: Kestrel on a free 127.0.0.1 port (port 0), its own data directory,
/// real storage, built exactly as Program.cs builds it.
/// </summary>
public sealed class InProcessServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly bool _ownsDir;

    private InProcessServer(WebApplication app, string dataDir, bool ownsDir)
    {
        _app = app;
        DataDir = dataDir;
        _ownsDir = ownsDir;
        Url = ServerApp.Addresses(app).Single();
        Client = new HttpClient { BaseAddress = new Uri(Url), Timeout = TimeSpan.FromSeconds(60) };
    }

    public string Url { get; }
    public string DataDir { get; }
    public HttpClient Client { get; }

    /// <summary>The server's services (tests read its singletons).</summary>
    public IServiceProvider Services => _app.Services;

    public static async Task<InProcessServer> Start(params string[] extraArgs) => await StartIn(null, extraArgs);

    public static Task<InProcessServer> StartIn(string? dataDir, params string[] extraArgs) => StartWith(dataDir, null, extraArgs);

    /// <summary><see cref="StartIn"/> with <paramref name="services"/> registered before the server's storage (test hooks).</summary>
    public static async Task<InProcessServer> StartWith(string? dataDir, Action<IServiceCollection>? services, params string[] extraArgs)
    {
        bool owns = dataDir is null;
        dataDir ??= Path.Combine(Path.GetTempPath(), "pa-server-" + Guid.NewGuid().ToString("N"));
        string[] args = ["--urls", "http://127.0.0.1:0", "--data-dir", dataDir, "--Logging:LogLevel:Default", "Warning", .. extraArgs];
        WebApplication app = ServerApp.Build(args, (collection, configuration) =>
        {
            services?.Invoke(collection);
            collection.AddProfileStorageOrCluster(configuration);
        });
        await app.StartAsync();
        var server = new InProcessServer(app, dataDir, owns);
        await server.WaitReady();
        return server;
    }

    public async Task WaitReady()
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            using var response = await Client.GetAsync("/readyz");
            if (response.StatusCode == HttpStatusCode.OK) return;
            await Task.Delay(20);
        }
        throw new TimeoutException("server not ready within 60 s");
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        if (_ownsDir)
        {
            try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}

/// <summary>The built server as a child process (<c>dotnet ProfileArena.Server.dll</c>), for kill -9.</summary>
public sealed class ChildServer : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output;

    private ChildServer(Process process, string url, StringBuilder output)
    {
        _process = process;
        _output = output; // still written by the process's output handlers: Output is everything so far
        Url = url;
        Client = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };
    }

    public string Url { get; }
    public HttpClient Client { get; }
    public string Output { get { lock (_output) return _output.ToString(); } }
    public int ProcessId => _process.Id;
    public bool HasExited => _process.HasExited;
    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    public static string ServerDll
    {
        get
        {
            string configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release";
            string dll = Path.Combine(SharedData.RepoRoot, "src", "ProfileArena.Server", "bin", configuration, "net10.0", "ProfileArena.Server.dll");
            if (!File.Exists(dll)) throw new FileNotFoundException($"the built server is missing: {dll} (build the solution first)");
            return dll;
        }
    }

    public static Task<ChildServer> Start(string dataDir, params string[] extraArgs) => Start(dataDir, new Dictionary<string, string>(), extraArgs);

    /// <summary>As <see cref="Start(string, string[])"/> with extra environment variables (e.g. DOTNET_GC* settings).</summary>
    public static async Task<ChildServer> Start(string dataDir, IReadOnlyDictionary<string, string> environment, params string[] extraArgs)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { ServerDll, "--urls", "http://127.0.0.1:0", "--data-dir", dataDir }.Concat(extraArgs)) info.ArgumentList.Add(a);
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (key, value) in environment) info.Environment[key] = value;
        var process = Process.Start(info)!;
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new StringBuilder();
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (output) output.AppendLine(line);
            Match m = Regex.Match(line, @"Now listening on: (http://127\.0\.0\.1:\d+)");
            if (m.Success) listening.TrySetResult(m.Groups[1].Value);
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        Task done = await Task.WhenAny(listening.Task, process.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(60)));
        if (done != listening.Task)
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            lock (output) throw new InvalidOperationException($"the server did not start:\n{output}");
        }
        var child = new ChildServer(process, listening.Task.Result, output);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            try
            {
                using var r = await child.Client.GetAsync("/readyz");
                if (r.StatusCode == HttpStatusCode.OK) return child;
            }
            catch (HttpRequestException) { }
            if (process.HasExited) break;
            await Task.Delay(20);
        }
        child.Kill();
        lock (output) throw new InvalidOperationException($"the server did not become ready:\n{output}");
    }

    /// <summary>SIGKILL: no shutdown code runs.</summary>
    public void Kill()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit(30_000);
    }

    public void Dispose()
    {
        Client.Dispose();
        Kill();
        _process.Dispose();
    }
}

/// <summary>Requests and replies as the tests use them.</summary>
public static class Api
{
    public static async Task<HttpResponseMessage> IngestFolded(HttpClient client, string name, string body, long from, long until, string? auth = null, string path = "/ingest")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{path}?name={Uri.EscapeDataString(name)}&from={from}&until={until}")
        {
            Content = new StringContent(body, Encoding.UTF8, "application/x-www-form-urlencoded"),
        };
        if (auth is not null) request.Headers.Authorization = AuthenticationHeaderValueParse(auth);
        return await client.SendAsync(request);
    }

    public static System.Net.Http.Headers.AuthenticationHeaderValue AuthenticationHeaderValueParse(string header)
    {
        int space = header.IndexOf(' ');
        return new(header[..space], header[(space + 1)..]);
    }

    public static async Task<(HttpStatusCode Status, string Body)> Get(HttpClient client, string pathAndQuery, string? auth = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, pathAndQuery);
        if (auth is not null) request.Headers.Authorization = AuthenticationHeaderValueParse(auth);
        using var response = await client.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    public static async Task<JsonElement> GetJson(HttpClient client, string pathAndQuery, string? auth = null)
    {
        var (status, body) = await Get(client, pathAndQuery, auth);
        Assert.True(status == HttpStatusCode.OK, $"GET {pathAndQuery}: {(int)status} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>Every stack of a query with its self value (render format=collapsed), over all time.</summary>
    public static async Task<Dictionary<string, ulong>> Stacks(HttpClient client, string query, string? auth = null, string from = "0", string until = "now%2B1d")
    {
        var (status, body) = await Get(client, $"/render?query={Uri.EscapeDataString(query)}&from={from}&until={until}&format=collapsed", auth);
        Assert.True(status == HttpStatusCode.OK, $"render {query}: {(int)status} {body}");
        var stacks = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (string line in body.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int space = line.LastIndexOf(' ');
            stacks[line[..space]] = ulong.Parse(line[(space + 1)..]);
        }
        return stacks;
    }

    /// <summary>Decodes a "single" flamebearer into path → (self, total), checking its invariants on the way.</summary>
    public static Dictionary<string, (ulong Self, ulong Total)> Flamebearer(JsonElement root)
    {
        JsonElement fb = root.GetProperty("flamebearer");
        string[] names = fb.GetProperty("names").EnumerateArray().Select(n => n.GetString()!).ToArray();
        var levels = new List<List<(ulong X, ulong Total, ulong Self, string Name)>>();
        foreach (JsonElement l in fb.GetProperty("levels").EnumerateArray())
        {
            ulong[] v = l.EnumerateArray().Select(e => e.GetUInt64()).ToArray();
            Assert.Equal(0, v.Length % 4);
            var row = new List<(ulong, ulong, ulong, string)>();
            ulong end = 0;
            for (int i = 0; i < v.Length; i += 4)
            {
                ulong x = end + v[i];
                row.Add((x, v[i + 1], v[i + 2], names[v[i + 3]]));
                end = x + v[i + 1];
            }
            levels.Add(row);
        }
        var result = new Dictionary<string, (ulong, ulong)>(StringComparer.Ordinal);
        var pathOf = new Dictionary<(int, int), string>();
        for (int level = 1; level < levels.Count; level++)
        {
            for (int i = 0; i < levels[level].Count; i++)
            {
                var n = levels[level][i];
                int parent = levels[level - 1].FindLastIndex(p => p.X <= n.X && n.X < p.X + p.Total);
                string path = level == 1 ? n.Name : pathOf[(level - 1, parent)] + ";" + n.Name;
                pathOf[(level, i)] = path;
                result[path] = (n.Self, n.Total);
            }
        }
        return result;
    }
}
