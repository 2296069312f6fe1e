using Microsoft.Playwright;

namespace ProfileArena.Tests.Server.WebUi;

/// <summary>The real server with two tenants (Auth:Tenants), each seeded over HTTP with its own stacks.</summary>
public sealed class TwoTenantServerFixture : IAsyncLifetime
{
    public const string AcmeKey = "acme-key-0f3c";
    public const string OtherKey = "other-key-9b2d";

    public ServerProcess Server { get; private set; } = null!;
    public BrowserSession Browser { get; private set; } = null!;
    public long Window { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds() / 10 * 10 - 600;

    public SeededProfile Acme => new("shop.cpu", [("env", "prod")], Window, [("main;acme_only", 120), ("main;shared", 30)]);
    public SeededProfile Other => new("shop.cpu", [("env", "prod")], Window, [("main;other_only", 999)]);

    public async ValueTask InitializeAsync()
    {
        Server = await ServerProcess.StartAsync($"--Auth:Tenants:acme={AcmeKey}", $"--Auth:Tenants:other={OtherKey}");
        var seeder = new SeededProfiles(DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        await seeder.IngestAsync(Server.BaseAddress, AcmeKey, [Acme]);
        await seeder.IngestAsync(Server.BaseAddress, OtherKey, [Other]);
        Browser = await BrowserSession.LaunchAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null) await Browser.DisposeAsync();
        if (Server is not null) await Server.DisposeAsync();
    }
}

/// <summary>With auth on, the page asks for the tenant key on 401, keeps it in sessionStorage, sends it
/// as a Bearer token, and shows that tenant's data only.</summary>
public sealed class WebUiAuthTests(TwoTenantServerFixture fixture) : IClassFixture<TwoTenantServerFixture>
{
    [Fact]
    public async Task A_401_asks_for_the_tenant_key_which_is_sent_as_bearer_and_shows_that_tenants_data_only()
    {
        // The 401s are expected here, so HTTP errors are not counted as problems; script errors still are.
        await using var ui = await fixture.Browser.OpenAsync(fixture.Server.BaseAddress, failedRequestsExpected: true);
        var sentKeys = new List<string?>();
        ui.Page.Request += (_, r) => { if (r.Url.Contains("/render", StringComparison.Ordinal)) lock (sentKeys) sentKeys.Add(r.Headers.GetValueOrDefault("authorization")); };

        string url = $"/?query={Uri.EscapeDataString("shop.cpu{env=\"prod\"}")}&from={fixture.Window - 60}&until={fixture.Window + 60}";
        await ui.Page.GotoAsync(url);
        await ui.Page.Locator("#auth").WaitForAsync(); // visible
        Assert.Equal("error", await ui.Page.EvaluateAsync<string>("() => document.body.dataset.state"));

        // A wrong key is refused and the form stays.
        await ui.Page.FillAsync("#key", "not-a-key");
        await ui.Page.ClickAsync("#auth button[type=submit]");
        await ui.Page.Locator("#auth-error", new() { HasText = "refused" }).WaitForAsync();

        // The right key: the tenant's own graph, none of the other tenant's frames.
        int before = await ui.LoadsAsync();
        await ui.Page.FillAsync("#key", TwoTenantServerFixture.AcmeKey);
        await ui.Page.ClickAsync("#auth button[type=submit]");
        await ui.WaitLoadedAsync(before);
        Assert.True(await ui.Page.Locator("#auth").IsHiddenAsync());
        Assert.Equal(SeededProfiles.Table(fixture.Acme.Stacks), await ui.TableAsync());
        Assert.Equal(TwoTenantServerFixture.AcmeKey, await ui.Page.EvaluateAsync<string>("() => sessionStorage.getItem('profilearena.apiKey')"));
        lock (sentKeys) Assert.Equal($"Bearer {TwoTenantServerFixture.AcmeKey}", sentKeys[^1]);

        // A reload in the same tab keeps the key (sessionStorage) and the view.
        await ui.Page.ReloadAsync();
        await ui.WaitLoadedAsync();
        Assert.True(await ui.Page.Locator("#auth").IsHiddenAsync());
        Assert.Equal(SeededProfiles.Table(fixture.Acme.Stacks), await ui.TableAsync());

        // The other tenant's key in a fresh tab shows the other tenant's data.
        await using var other = await fixture.Browser.OpenAsync(fixture.Server.BaseAddress, failedRequestsExpected: true);
        await other.Page.GotoAsync(url);
        await other.Page.Locator("#auth").WaitForAsync();
        before = await other.LoadsAsync();
        await other.Page.FillAsync("#key", TwoTenantServerFixture.OtherKey);
        await other.Page.ClickAsync("#auth button[type=submit]");
        await other.WaitLoadedAsync(before);
        Assert.Equal(SeededProfiles.Table(fixture.Other.Stacks), await other.TableAsync());

        Assert.All(ui.Problems.Concat(other.Problems), p => Assert.True(p.StartsWith("HTTP 401", StringComparison.Ordinal) || p.Contains("401", StringComparison.Ordinal), p));
    }
}
