using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ProfileArena.Server.Cluster;
using ProfileArena.Server.Hosting;
using ProfileArena.Server.Storage;
using ProfileArena.Tests.Server.Storage;

namespace ProfileArena.Tests.Server.Cluster;

/// <summary><c>Cluster:Mode</c>: None (the default) is the single-process server with no Orleans at all; a cluster
/// mode co-hosts a silo whose storage routes to shard grains; bad settings stop the server before it binds.</summary>
public sealed class ClusterConfigurationTests
{
    private static WebApplication Build(string dataDir, params string[] args) =>
        ServerApp.Build(["--urls", "http://127.0.0.1:0", "--data-dir", dataDir, .. args], (services, configuration) => services.AddProfileStorageOrCluster(configuration));

    [Fact]
    public async Task ModeNoneIsTheSingleNodeWithNoSilo()
    {
        using var dir = new TempDataDir();
        await using WebApplication app = Build(dir.Path);
        Assert.IsType<ProfileStorage>(app.Services.GetRequiredService<IProfileStorage>());
        Assert.Null(app.Services.GetService<IGrainFactory>());
        Assert.DoesNotContain(app.Services.GetServices<IHostedService>(), s => s.GetType().Namespace?.StartsWith("Orleans", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task RedisModeHostsASiloWhoseStorageRoutesToShardGrains()
    {
        using var dir = new TempDataDir();
        await using WebApplication app = Build(dir.Path, "--Cluster:Mode", "Redis", "--Cluster:ConnectionString", "127.0.0.1:1", "--Cluster:SiloPort", "40001", "--Cluster:GatewayPort", "40002");
        Assert.IsType<ClusterProfileStorage>(app.Services.GetRequiredService<IProfileStorage>());
        Assert.NotNull(app.Services.GetService<IGrainFactory>());
        var options = app.Services.GetRequiredService<ProfileClusterOptions>();
        Assert.Equal((ClusterMode.Redis, 40001, 40002, "127.0.0.1"), (options.Mode, options.SiloPort, options.GatewayPort, options.AdvertisedAddress));
    }

    [Theory]
    [InlineData("--Cluster:Mode", "Redis")] // no connection string
    [InlineData("--Cluster:Mode", "Zookeeper")]
    [InlineData("--Cluster:SiloPort", "0")]
    [InlineData("--Cluster:AdvertisedAddress", "my-host")]
    [InlineData("--Cluster:PreparedTimeoutSeconds", "10")]
    public void BadClusterSettingsStopTheServerBeforeItStarts(string key, string value)
    {
        using var dir = new TempDataDir();
        var e = Assert.ThrowsAny<Exception>(() => Build(dir.Path, "--Cluster:ConnectionString", key == "--Cluster:Mode" && value == "Redis" ? "" : "x", key, value));
        // Program.cs turns these into "error: …" and exit code 2.
        Assert.True(e is ArgumentException or InvalidOperationException, e.ToString());
        Assert.Contains("Cluster:", e.Message, StringComparison.Ordinal);
    }
}
