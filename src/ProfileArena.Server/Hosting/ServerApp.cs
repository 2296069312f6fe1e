using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Prometheus;
using ProfileArena.Server.Http;
using ProfileArena.Server.Ingest;
using ProfileArena.Server.Operations;
using ProfileArena.Server.Query;

namespace ProfileArena.Server.Hosting;

/// <summary>
/// Builds the server: configuration (defaults &lt; appsettings.json &lt; environment &lt; command line,
/// with <c>--data-dir</c> → <c>Storage:DataDir</c>), Kestrel limits, services and endpoints. Program.cs
/// and the tests (in-process, port 0) build it the same way.
/// </summary>
public static class ServerApp
{
    /// <summary>pyroscope's port, on loopback.</summary>
    public const string DefaultUrl = "http://127.0.0.1:4040";

    /// <summary>Builds the app; <paramref name="addStorage"/> registers <see cref="Storage.IProfileStorage"/>.</summary>
    public static WebApplication Build(string[] args, Action<IServiceCollection, IConfiguration> addStorage)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            // appsettings.json sits beside the binary, whatever directory `dotnet run` is started from.
            ContentRootPath = AppContext.BaseDirectory,
        });
        // Lowest precedence: the defaults. Then the switch mapping for --data-dir (command line wins).
        builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource
        {
            InitialData = new Dictionary<string, string?> { ["urls"] = DefaultUrl, ["Storage:DataDir"] = "data" },
        });
        builder.Configuration.AddCommandLine(args, new Dictionary<string, string> { ["--data-dir"] = "Storage:DataDir", ["--storage"] = "Storage:Engine" });
        // A relative data directory is relative to where the server is started, not to the binary.
        if (builder.Configuration["Storage:DataDir"] is { } dir && !Path.IsPathRooted(dir))
            builder.Configuration["Storage:DataDir"] = Path.GetFullPath(dir);

        var serverOptions = builder.Configuration.GetSection(ServerOptions.Section).Get<ServerOptions>() ?? new ServerOptions();
        var authOptions = builder.Configuration.GetSection(AuthOptions.Section).Get<AuthOptions>() ?? new AuthOptions();
        LoopbackGuard.Check(LoopbackGuard.ConfiguredUrls(builder.Configuration), authOptions.Tenants.Count > 0, serverOptions.AllowNonLoopback);
        if (serverOptions.MallocArenas < 0) throw new ArgumentException($"Server:MallocArenas must be 0 (glibc's default) or more, not {serverOptions.MallocArenas}");
        if (serverOptions.MallocArenas > 0) Operations.NativeHeap.LimitArenas(serverOptions.MallocArenas);
        RaiseMinWorkerThreads(serverOptions.MinWorkerThreads);
        Query.QueryThreads.CheckSettings(serverOptions.QueryThreads, serverOptions.QueryThreadNice);
        StartupWarmup.CheckSettings(serverOptions.WarmupSeconds);

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            KestrelServerLimits limits = kestrel.Limits;
            limits.MaxRequestBodySize = serverOptions.MaxRequestBodyBytes;
            limits.MaxRequestLineSize = 16 << 10;
            limits.MaxRequestHeadersTotalSize = 32 << 10;
            limits.MaxRequestHeaderCount = 64;
            limits.RequestHeadersTimeout = TimeSpan.FromSeconds(serverOptions.RequestHeadersTimeoutSeconds);
            limits.KeepAliveTimeout = TimeSpan.FromSeconds(serverOptions.KeepAliveTimeoutSeconds);
            limits.MinRequestBodyDataRate = new MinDataRate(serverOptions.MinRequestBodyBytesPerSecond, TimeSpan.FromSeconds(5));
            limits.MaxConcurrentConnections = 1024;
        });
        // Structured logs: ASP.NET Core's console logger; --Logging:Console:FormatterName=json writes JSON lines.

        builder.Services.Configure<ServerOptions>(builder.Configuration.GetSection(ServerOptions.Section));
        builder.Services.Configure<AuthOptions>(builder.Configuration.GetSection(AuthOptions.Section));
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<TenantResolver>();
        builder.Services.AddSingleton<ApiHandler>();
        builder.Services.AddSingleton<ServerMetrics>();
        builder.Services.AddSingleton<QueryEndpoints.Services>();
        builder.Services.AddSingleton<StartupWarmup>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<StartupWarmup>());
        addStorage(builder.Services, builder.Configuration);

        WebApplication app = builder.Build();
        _ = app.Services.GetRequiredService<TenantResolver>(); // a bad Auth section fails at start, not at the first request
        app.Lifetime.ApplicationStarted.Register(() => CheckBoundAddresses(app, authOptions.Tenants.Count > 0, serverOptions.AllowNonLoopback));

        IngestEndpoints.Map(app);
        QueryEndpoints.Map(app);
        HealthEndpoints.Map(app);
        app.MapMetrics("/metrics", app.Services.GetRequiredService<ServerMetrics>().Registry);
        return app;
    }

    /// <summary>The second line of the loopback policy: what Kestrel actually bound.</summary>
    private static void CheckBoundAddresses(WebApplication app, bool authenticated, bool allowNonLoopback)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        try
        {
            LoopbackGuard.Check(addresses, authenticated, allowNonLoopback);
            app.Logger.LogInformation("ProfileArena server listening on {Addresses} ({Mode})", string.Join(", ", addresses),
                authenticated ? "tenants with API keys" : "single tenant 'anonymous', no authentication");
        }
        catch (InvalidOperationException e)
        {
            app.Logger.LogCritical("{Message}", e.Message);
            app.Lifetime.StopApplication();
        }
    }

    /// <summary>The URLs the started server listens on (with the real port when 0 was asked for).</summary>
    public static IReadOnlyList<string> Addresses(WebApplication app) =>
        [.. app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? []];

    /// <summary>Applies <see cref="ServerOptions.MinWorkerThreads"/> (process-wide; never lowers the runtime's own minimum).</summary>
    private static void RaiseMinWorkerThreads(int minWorkers)
    {
        if (minWorkers is < 0 or > 4096) throw new ArgumentException($"Server:MinWorkerThreads must be 0 (the runtime's default) to 4096, not {minWorkers}");
        ThreadPool.GetMinThreads(out int workers, out int completionPorts);
        if (minWorkers > workers) ThreadPool.SetMinThreads(minWorkers, completionPorts);
    }

    public static ServerOptions Options(WebApplication app) => app.Services.GetRequiredService<IOptions<ServerOptions>>().Value;
}
