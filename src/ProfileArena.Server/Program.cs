// The server's entry point: see README "Running the server". Filled in by the server issue.
var builder = WebApplication.CreateBuilder(args);
var app = builder.Build();
app.MapGet("/healthz", () => "ok");
app.Run();
