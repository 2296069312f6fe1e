// The server's entry point: see README "Running the server".
//   dotnet run -c Release --project src/ProfileArena.Server [-- --urls URL --data-dir DIR --Auth:Tenants:acme=KEY]
using ProfileArena.Server.Cluster;
using ProfileArena.Server.Hosting;
using ProfileArena.Server.Storage;

WebApplication app;
try
{
    app = ServerApp.Build(args, (services, configuration) => services.AddProfileStorageOrCluster(configuration));
}
catch (Exception e) when (e is InvalidOperationException or ArgumentException)
{
    // Configuration the server cannot run with (an unauthenticated non-loopback bind, a bad Auth or
    // Storage section): say so and stop before binding anything.
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
ProfileArena.Server.WebUi.WebUiEndpoints.MapWebUi(app); // GET / and /ui/*: the web page
await app.RunAsync();
return 0;
