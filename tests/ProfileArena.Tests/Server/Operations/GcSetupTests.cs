using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using ProfileArena.Tests.Server.Storage;

namespace ProfileArena.Tests.Server.Operations;

/// <summary>
/// The built server runs Server GC with one heap (the project's runtime configuration: the managed heap stays small
/// because the trees are native, and one GC thread does not wait for a second core), and an operator's
/// DOTNET_GCHeapCount still wins. Read from the real process's /metrics, which reports what the runtime set up.
/// </summary>
public sealed class GcSetupTests
{
    [Theory]
    [InlineData(null, 1)]
    [InlineData("2", 2)]
    public async Task TheServerRunsServerGcWithOneHeapUnlessTheEnvironmentSaysOtherwise(string? heapCountVariable, int expectedHeaps)
    {
        using var dir = new TempDataDir();
        var environment = new Dictionary<string, string>();
        if (heapCountVariable is not null) environment["DOTNET_GCHeapCount"] = heapCountVariable;
        using ChildServer server = await ChildServer.Start(dir.Path, environment);
        using HttpResponseMessage response = await server.Client.GetAsync("/metrics", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        string metrics = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.Equal(expectedHeaps, Gauge(metrics, "profilearena_gc_heaps"));
        Assert.Equal(1, Gauge(metrics, "profilearena_gc_server"));
    }

    /// <summary>The thread pool starts with <c>Server:MinWorkerThreads</c> (64) workers available without delay, and 0
    /// leaves the runtime's one per core: blocked queries must not hold up the requests behind them.</summary>
    [Theory]
    [InlineData(null, 64)]
    [InlineData("0", 0)]
    [InlineData("12", 12)]
    public async Task TheThreadPoolMinimumIsTheConfiguredOneAndNeverBelowTheRuntimes(string? setting, int configured)
    {
        using var dir = new TempDataDir();
        string[] args = setting is null ? [] : ["--Server:MinWorkerThreads", setting];
        using ChildServer server = await ChildServer.Start(dir.Path, new Dictionary<string, string>(), args);
        using HttpResponseMessage response = await server.Client.GetAsync("/metrics", TestContext.Current.CancellationToken);
        string metrics = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.Equal(Math.Max(configured, Environment.ProcessorCount), Gauge(metrics, "profilearena_threadpool_min_workers"));
    }

    private static double Gauge(string metrics, string name)
    {
        Match m = Regex.Match(metrics, $@"^{name} (\S+)$", RegexOptions.Multiline);
        Assert.True(m.Success, $"{name} missing from /metrics");
        return double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }
}
