using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
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
        // Shard grains are placed by storage bytes, and every silo rebalances (README "Running a cluster").
        Assert.IsType<ShardBytesPlacementDirector>(app.Services.GetRequiredKeyedService<Orleans.Runtime.Placement.IPlacementDirector>(typeof(ShardBytesPlacement)));
        Assert.Contains(app.Services.GetServices<ILifecycleParticipant<ISiloLifecycle>>(), p => p is ShardRebalancer);
        Assert.Equal((5, 60, 0.25, 64L << 20), (options.LoadRefreshSeconds, options.RebalanceIntervalSeconds, options.RebalanceThresholdRatio, options.RebalanceMinBytes));
        // A shard's deactivation (snapshot, ownership given up) is not cut off at Orleans' 30 s.
        Assert.Equal(TimeSpan.FromSeconds(600), app.Services.GetRequiredService<IOptions<GrainCollectionOptions>>().Value.DeactivationTimeout);
    }

    [Theory]
    [InlineData("--Cluster:Mode", "Redis")] // no connection string
    [InlineData("--Cluster:Mode", "Zookeeper")]
    [InlineData("--Cluster:SiloPort", "0")]
    [InlineData("--Cluster:AdvertisedAddress", "my-host")]
    [InlineData("--Cluster:PreparedTimeoutSeconds", "10")]
    [InlineData("--Cluster:Mode", "AzureStorage")] // "x" is no storage connection string
    [InlineData("--Cluster:ProbeTimeoutSeconds", "0")]
    [InlineData("--Cluster:TableRefreshSeconds", "-1")]
    [InlineData("--Cluster:NumMissedProbesLimit", "0")]
    [InlineData("--Cluster:NumVotesForDeathDeclaration", "0")]
    [InlineData("--Cluster:QueryTimeoutSeconds", "0")]
    [InlineData("--Cluster:QueryResultSeconds", "30")] // not above the call timeout: a collecting silo could lose its part
    [InlineData("--Cluster:MaxPendingResultBytes", "1000")]
    [InlineData("--Cluster:LoadWaitSeconds", "-1")]
    [InlineData("--Cluster:DeactivationTimeoutSeconds", "0")]
    [InlineData("--Cluster:LoadRefreshSeconds", "0")]
    [InlineData("--Cluster:RebalanceIntervalSeconds", "-1")]
    [InlineData("--Cluster:RebalanceThresholdRatio", "-0.5")]
    [InlineData("--Cluster:RebalanceMinBytes", "-1")]
    public void BadClusterSettingsStopTheServerBeforeItStarts(string key, string value)
    {
        using var dir = new TempDataDir();
        var e = Assert.ThrowsAny<Exception>(() => Build(dir.Path, "--Cluster:ConnectionString", key == "--Cluster:Mode" && value == "Redis" ? "" : "x", key, value));
        // Program.cs turns these into "error: …" and exit code 2.
        Assert.True(e is ArgumentException or InvalidOperationException, e.ToString());
        Assert.Contains("Cluster:", e.Message, StringComparison.Ordinal);
    }

    private const string AzuriteStyle = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" +
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;TableEndpoint=http://127.0.0.1:1/devstoreaccount1;";

    [Fact]
    public async Task MembershipTimeoutsComeFromClusterKeysAndDefaultToOrleans()
    {
        using var dir = new TempDataDir();
        string[] silo = ["--Cluster:Mode", "AzureStorage", "--Cluster:ConnectionString", AzuriteStyle, "--Cluster:SiloPort", "40011", "--Cluster:GatewayPort", "40012"];
        await using (WebApplication defaults = Build(dir.Path, silo))
        {
            Assert.IsType<ClusterProfileStorage>(defaults.Services.GetRequiredService<IProfileStorage>());
            var o = defaults.Services.GetRequiredService<IOptions<ClusterMembershipOptions>>().Value;
            var orleans = new ClusterMembershipOptions();
            Assert.Equal((orleans.ProbeTimeout, orleans.NumMissedProbesLimit, orleans.NumVotesForDeathDeclaration, orleans.DeathVoteExpirationTimeout, orleans.IAmAliveTablePublishTimeout, orleans.TableRefreshTimeout),
                (o.ProbeTimeout, o.NumMissedProbesLimit, o.NumVotesForDeathDeclaration, o.DeathVoteExpirationTimeout, o.IAmAliveTablePublishTimeout, o.TableRefreshTimeout));
        }
        await using WebApplication tuned = Build(dir.Path, [.. silo, "--Cluster:ProbeTimeoutSeconds", "1.5", "--Cluster:NumMissedProbesLimit", "4", "--Cluster:NumVotesForDeathDeclaration", "1",
            "--Cluster:DeathVoteExpirationSeconds", "30", "--Cluster:IAmAliveTablePublishSeconds", "5", "--Cluster:TableRefreshSeconds", "2"]);
        var t = tuned.Services.GetRequiredService<IOptions<ClusterMembershipOptions>>().Value;
        Assert.Equal((TimeSpan.FromSeconds(1.5), 4, 1, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(2)),
            (t.ProbeTimeout, t.NumMissedProbesLimit, t.NumVotesForDeathDeclaration, t.DeathVoteExpirationTimeout, t.IAmAliveTablePublishTimeout, t.TableRefreshTimeout));
    }

    [Fact]
    public async Task TheRealServerExitsWithCode2OnAnAzureStorageConnectionStringItCannotRead()
    {
        using var dir = new TempDataDir();
        const string secret = "AccountName=acct;AccountKey=not-base64-SECRET;TableEndpoint=::not a uri::";
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { ChildServer.ServerDll, "--urls", "http://127.0.0.1:0", "--data-dir", dir.Path, "--Cluster:Mode", "AzureStorage", "--Cluster:ConnectionString", secret })
            info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken), stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(cts.Token);
        string output = await stdout + await stderr;
        Assert.True(process.ExitCode == 2, $"exit code {process.ExitCode}: {output}");
        Assert.Contains("error: Cluster:ConnectionString is not an Azure Storage connection string", output, StringComparison.Ordinal);
        Assert.DoesNotContain("SECRET", output, StringComparison.Ordinal); // the account key is never echoed
    }
}
