using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ProfileArena.Server.Storage;

/// <summary>Registration of the storage in the server's container.</summary>
public static class StorageServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="ProfileStorage"/> as <see cref="IProfileStorage"/> (singleton) with
    /// <see cref="StorageOptions"/> bound from the <c>Storage</c> section of <paramref name="configuration"/>, and
    /// <see cref="StorageHostedService"/>, which replays the data directory in the background at start
    /// (<see cref="IProfileStorage.IsReady"/> false until done; a corrupt file stops the host with exit code 1),
    /// runs retention and periodic snapshots, and on stop finishes queued writes and snapshots every shard.
    /// </summary>
    public static IServiceCollection AddProfileStorage(this IServiceCollection services, IConfiguration configuration)
    {
        StorageOptions options = StorageOptions.From(configuration.GetSection(StorageOptions.Section));
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(options);
        services.AddSingleton(sp => new ProfileStorage(options, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton<IProfileStorage>(sp => sp.GetRequiredService<ProfileStorage>());
        services.AddHostedService<StorageHostedService>();
        return services;
    }
}
