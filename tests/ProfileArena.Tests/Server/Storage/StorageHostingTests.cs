using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ProfileArena.Server.Storage;
using static ProfileArena.Tests.Server.Storage.StorageTestKit;

namespace ProfileArena.Tests.Server.Storage;

/// <summary>The registration the server uses: options from configuration, replay in the background, snapshot
/// on stop, a corrupt WAL stops the host.</summary>
public class StorageHostingTests
{
    private const long T0 = 1_700_000_000;

    private static IHost Build(string dataDir)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Storage:DataDir"] = dataDir,
            ["Storage:ShardCount"] = "2",
            ["Storage:LevelRetentionSeconds:0"] = "3600",
            ["Storage:LevelRetentionSeconds:1"] = "86400",
            ["Storage:MaxNativeBytes"] = "1073741824",
        });
        builder.Services.AddProfileStorage(builder.Configuration);
        return builder.Build();
    }

    private static async Task WaitReady(IProfileStorage storage)
    {
        for (int i = 0; i < 500 && !storage.IsReady; i++) await Task.Delay(10, TestContext.Current.CancellationToken);
        Assert.True(storage.IsReady);
    }

    [Fact]
    public async Task TheHostReplaysServesAndSnapshotsOnStop()
    {
        using var dir = new TempDataDir();
        var model = new ReferenceModel();
        using (IHost host = Build(dir.Path))
        {
            await host.StartAsync(TestContext.Current.CancellationToken);
            var storage = host.Services.GetRequiredService<IProfileStorage>();
            Assert.Same(host.Services.GetRequiredService<ProfileStorage>(), storage);
            Assert.Equal(2, host.Services.GetRequiredService<StorageOptions>().ShardCount);
            Assert.Equal(1L << 30, host.Services.GetRequiredService<StorageOptions>().MaxNativeBytes);
            Assert.Equal([3600L, 86400L], host.Services.GetRequiredService<StorageOptions>().LevelRetentionSeconds);
            await WaitReady(storage);
            IngestProfile p = Profile(Key("acme", "app.cpu"), T0, ("main;a", 3));
            await storage.IngestAsync([p], TestContext.Current.CancellationToken);
            model.Add(p);
            await host.StopAsync(TestContext.Current.CancellationToken);
        }
        Assert.NotEmpty(Directory.EnumerateFiles(dir.Path, "snap-*.index", SearchOption.AllDirectories));
        Assert.All(Directory.EnumerateFiles(dir.Path, "wal-*.log", SearchOption.AllDirectories), f => Assert.Equal(0, new FileInfo(f).Length));
        using (IHost host = Build(dir.Path))
        {
            await host.StartAsync(TestContext.Current.CancellationToken);
            var storage = host.Services.GetRequiredService<IProfileStorage>();
            await WaitReady(storage);
            AssertSame(model.Query("acme", Selector("app.cpu"), T0, T0 + 10), QueryStacks(storage, "acme", Selector("app.cpu"), T0, T0 + 10, out _), "after host restart");
            await host.StopAsync(TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public void BadRetentionConfigurationIsRefusedNamingTheKey()
    {
        IConfiguration Config(params (string, string)[] pairs) =>
            new ConfigurationBuilder().AddInMemoryCollection(pairs.Select(p => new KeyValuePair<string, string?>(p.Item1, p.Item2))).Build().GetSection("Storage");
        Assert.Equal([600L, 3000L], StorageOptions.From(Config(("Storage:LevelRetentionSeconds:1", "3000"), ("Storage:LevelRetentionSeconds:0", "600"))).LevelRetentionSeconds);
        Assert.Contains("must not shrink", Assert.Throws<ArgumentException>(() => StorageOptions.From(Config(("Storage:LevelRetentionSeconds:2", "5000")))).Message);
        Assert.Contains("LevelRetentionSeconds:0", Assert.Throws<ArgumentException>(() => StorageOptions.From(Config(("Storage:LevelRetentionSeconds:0", "1h")))).Message);
        Assert.Contains("must not shrink", Assert.Throws<ArgumentException>(() => StorageOptions.From(Config(("Storage:LevelRetentionSeconds:0", "86400"), ("Storage:LevelRetentionSeconds:1", "3600")))).Message);
        Assert.Contains("ShardCount", Assert.Throws<ArgumentException>(() => StorageOptions.From(Config(("Storage:ShardCount", "0")))).Message);
    }

    [Fact]
    public async Task ACorruptWalStopsTheHostWithTheFileAndOffset()
    {
        using var dir = new TempDataDir();
        using (var storage = await OpenAsync(Options(dir.Path)))
        {
            for (int i = 0; i < 3; i++) await storage.IngestAsync([Profile(Key("acme", "app.cpu"), T0 + 10 * i, ("main;a", 3))], TestContext.Current.CancellationToken);
        }
        string segment = Directory.EnumerateFiles(dir.Path, "wal-*.log", SearchOption.AllDirectories).Single();
        byte[] bytes = File.ReadAllBytes(segment);
        bytes[30] ^= 1; // inside the first record's payload
        File.WriteAllBytes(segment, bytes);

        int exitCode = Environment.ExitCode;
        try
        {
            using IHost host = Build(dir.Path);
            await host.StartAsync(TestContext.Current.CancellationToken);
            var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
            var stopped = new TaskCompletionSource();
            lifetime.ApplicationStopping.Register(() => stopped.TrySetResult());
            await Task.WhenAny(stopped.Task, Task.Delay(30_000, TestContext.Current.CancellationToken));
            Assert.True(stopped.Task.IsCompleted, "the host did not stop");
            var service = host.Services.GetServices<IHostedService>().OfType<StorageHostedService>().Single();
            Assert.IsType<InvalidDataException>(service.StartupFailure);
            Assert.Contains(segment, service.StartupFailure!.Message);
            Assert.Contains("byte offset 0", service.StartupFailure.Message);
            Assert.Equal(1, Environment.ExitCode);
            Assert.False(host.Services.GetRequiredService<IProfileStorage>().IsReady);
            await host.StopAsync(TestContext.Current.CancellationToken);
        }
        finally
        {
            Environment.ExitCode = exitCode;
        }
    }
}
