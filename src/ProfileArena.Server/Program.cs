// The server's entry point: see README "Running the server". Filled in by the server issue.
using ProfileArena.Server.Storage;

var app = ProfileArena.Server.Hosting.ServerApp.Build(args, (services, configuration) => services.AddProfileStorage(configuration));
ProfileArena.Server.WebUi.WebUiEndpoints.MapWebUi(app); // GET / and /ui/*: the web page
app.Run();
