// The server's entry point: see README "Running the server". Filled in by the server issue.
var builder = WebApplication.CreateBuilder(args);
var app = builder.Build();
app.MapGet("/healthz", () => "ok");
ProfileArena.Server.WebUi.WebUiEndpoints.MapWebUi(app); // GET / and /ui/*: the web page
app.Run();
