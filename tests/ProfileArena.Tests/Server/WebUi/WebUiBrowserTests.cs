namespace ProfileArena.Tests.Server.WebUi;

/// <summary>The real server in its own process, seeded over HTTP ingest, and one chromium for the class.</summary>
public sealed class SeededServerFixture : IAsyncLifetime
{
    public ServerProcess Server { get; private set; } = null!;
    public BrowserSession Browser { get; private set; } = null!;
    public SeededProfiles Seeded { get; } = new(DateTimeOffset.UtcNow.ToUnixTimeSeconds());

    public async ValueTask InitializeAsync()
    {
        Server = await ServerProcess.StartAsync();
        await Seeded.IngestAsync(Server.BaseAddress);
        Browser = await BrowserSession.LaunchAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null) await Browser.DisposeAsync();
        if (Server is not null) await Server.DisposeAsync();
    }
}

/// <summary>
/// The web page (issue 11) driven in Debian's chromium through Playwright, against the real server
/// seeded with known folded stacks at known times. Every number asserted comes from
/// <see cref="SeededProfiles.Table"/>, a plain model of the component's table, or from the seeded times.
/// </summary>
public sealed class WebUiBrowserTests(SeededServerFixture fixture) : IClassFixture<SeededServerFixture>
{
    private SeededProfiles Seeded => fixture.Seeded;

    private static bool Prod(SeededProfile p) => p.Label("env") == "prod";

    private string Url(string query, long from, long until, string extra = "") =>
        $"/?query={Uri.EscapeDataString(query)}&from={from}&until={until}{extra}";

    private Task<UiPage> OpenAsync() => fixture.Browser.OpenAsync(fixture.Server.BaseAddress);

    [Fact]
    public async Task Page_and_every_file_it_references_are_served_with_their_types_and_etags()
    {
        var ct = TestContext.Current.CancellationToken;
        using var http = new HttpClient { BaseAddress = fixture.Server.BaseAddress };
        using var page = await http.GetAsync("/", ct);
        Assert.Equal(System.Net.HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        string html = await page.Content.ReadAsStringAsync(ct);
        var files = System.Text.RegularExpressions.Regex.Matches(html, "(?:src|href)=\"(/ui/[^\"]+)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.Contains("/ui/vendor/flamegraph.js", files);
        Assert.Contains("/ui/vendor/react.production.min.js", files);
        Assert.Contains("/ui/app.js", files);
        foreach (string file in files)
        {
            using var response = await http.GetAsync(file, ct);
            Assert.True(response.IsSuccessStatusCode, $"{file}: {(int)response.StatusCode}");
            Assert.Equal(file.EndsWith(".js", StringComparison.Ordinal) ? "text/javascript" : "text/css", response.Content.Headers.ContentType?.MediaType);
            Assert.NotEmpty(await response.Content.ReadAsByteArrayAsync(ct));
            Assert.True(response.Headers.ETag is not null, $"{file} has no ETag");
            // A client holding the same version gets 304 Not Modified.
            using var again = new HttpRequestMessage(HttpMethod.Get, file);
            again.Headers.IfNoneMatch.Add(response.Headers.ETag!);
            using var revalidated = await http.SendAsync(again, ct);
            Assert.Equal(System.Net.HttpStatusCode.NotModified, revalidated.StatusCode);
        }
        using var missing = await http.GetAsync("/ui/vendor/nope.js", ct);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Page_loads_with_the_seeded_apps_and_labels_and_no_console_errors_or_failed_requests()
    {
        await using var ui = await OpenAsync();
        await ui.GotoAsync("/");

        // With no query in the URL the page picks the first app and writes it into the URL.
        string[] apps = await ui.OptionsAsync("#profile");
        Assert.Equal(Seeded.All.Select(p => p.App).Distinct().Order(StringComparer.Ordinal), apps);
        Assert.Equal(apps[0], (await ui.UrlParamsAsync())["query"]);

        // "+ label" adds a filter whose name list holds the label names of the chosen app's series,
        // and whose value list that label's values among them.
        string app = apps[0];
        string[] Values(string label) => ["", .. Seeded.All.Where(p => p.App == app).Select(p => p.Label(label)!).Distinct().Order(StringComparer.Ordinal)];
        string[] labelNames = [.. Seeded.All.Where(p => p.App == app).SelectMany(p => p.Labels.Select(l => l.Name)).Distinct().Order(StringComparer.Ordinal)];
        await ui.Page.ClickAsync("#add-filter");
        var filter = ui.Page.Locator("#filters .filter").First;
        await filter.Locator($"select[aria-label='label value'] option[value='{Values(labelNames[0])[1]}']").WaitForAsync(new() { State = Microsoft.Playwright.WaitForSelectorState.Attached });
        Assert.Equal(labelNames, await ui.OptionsAsync("#filters .filter select[aria-label='label name']"));
        Assert.Equal(Values(labelNames[0]), await ui.OptionsAsync("#filters .filter select[aria-label='label value']"));

        await ui.Page.SelectOptionAsync("#filters .filter select[aria-label='label name']", labelNames[1]);
        await filter.Locator($"select[aria-label='label value'] option[value='{Values(labelNames[1])[1]}']").WaitForAsync(new() { State = Microsoft.Playwright.WaitForSelectorState.Attached });
        Assert.Equal(Values(labelNames[1]), await ui.OptionsAsync("#filters .filter select[aria-label='label value']"));

        // Another app: its own labels' values (shop.cpu has env dev and prod).
        await ui.ThenLoadedAsync(() => ui.Page.SelectOptionAsync("#profile", "shop.cpu"));
        app = "shop.cpu";
        await ui.Page.Locator("#filters select[aria-label='label value'] option[value='us']").WaitForAsync(new() { State = Microsoft.Playwright.WaitForSelectorState.Attached });
        await ui.Page.SelectOptionAsync("#filters .filter select[aria-label='label name']", "env");
        await ui.Page.Locator("#filters select[aria-label='label value'] option[value='dev']").WaitForAsync(new() { State = Microsoft.Playwright.WaitForSelectorState.Attached });
        Assert.Equal(Values("env"), await ui.OptionsAsync("#filters .filter select[aria-label='label value']"));
        Assert.Equal(["", "dev", "prod"], Values("env"));

        ui.AssertNoProblems();
    }

    [Fact]
    public async Task Flame_graph_table_shows_the_seeded_functions_with_their_values_and_a_label_filter_narrows_it()
    {
        await using var ui = await OpenAsync();
        await ui.GotoAsync(Url("shop.cpu", Seeded.RangeFrom, Seeded.RangeUntil));
        Assert.Equal(SeededProfiles.Table(Seeded.Stacks("shop.cpu", Seeded.RangeFrom, Seeded.RangeUntil)), await ui.TableAsync());
        long all = Seeded.Stacks("shop.cpu", Seeded.RangeFrom, Seeded.RangeUntil).Sum(s => s.Value);
        Assert.StartsWith($"{all} samples", await ui.Page.Locator("#status").InnerTextAsync());

        // Choose env = prod with the filter controls: the URL's query and the table follow.
        await ui.Page.ClickAsync("#add-filter");
        await ui.Page.Locator("#filters select[aria-label='label value'] option[value='prod']").WaitForAsync(new() { State = Microsoft.Playwright.WaitForSelectorState.Attached });
        await ui.ThenLoadedAsync(() => ui.Page.SelectOptionAsync("#filters select[aria-label='label value']", "prod"));
        Assert.Equal("shop.cpu{env=\"prod\"}", (await ui.UrlParamsAsync())["query"]);
        var expected = SeededProfiles.Table(Seeded.Stacks("shop.cpu", Seeded.RangeFrom, Seeded.RangeUntil, Prod));
        Assert.DoesNotContain("devonly", expected.Keys);
        Assert.Equal(expected, await ui.TableAsync());

        // The table is sortable: a click on the "Self" header orders rows by self, both ways.
        var selfHeader = ui.Page.Locator("#flamegraph table.flamegraph-table thead th", new() { HasText = "Self" });
        await selfHeader.ClickAsync();
        long[] first = [.. (await RowsInOrderAsync(ui)).Select(r => r.Self)];
        await selfHeader.ClickAsync();
        long[] second = [.. (await RowsInOrderAsync(ui)).Select(r => r.Self)];
        static bool Ascending(long[] a) => a.SequenceEqual(a.Order());
        static bool Descending(long[] a) => a.SequenceEqual(a.OrderDescending());
        Assert.True(first.Distinct().Count() > 1, "the seeded selves differ");
        Assert.True((Ascending(first) && Descending(second)) || (Descending(first) && Ascending(second)),
            $"self column after two clicks: [{string.Join(',', first)}] then [{string.Join(',', second)}]");

        ui.AssertNoProblems();
    }

    private static async Task<List<(string Name, long Self)>> RowsInOrderAsync(UiPage ui)
    {
        string[] rows = await ui.Page.Locator("#flamegraph table.flamegraph-table tbody tr[data-row]").EvaluateAllAsync<string[]>("rs => rs.map(r => r.dataset.row)");
        return [.. rows.Select(r => r.Split(';')).Select(p => (p[1], long.Parse(p[2], System.Globalization.CultureInfo.InvariantCulture)))];
    }

    [Fact]
    public async Task Dragging_a_range_on_the_timeline_requeries_and_the_graph_shows_that_window_only()
    {
        await using var ui = await OpenAsync();
        const string query = "shop.cpu{env=\"prod\"}";
        await ui.GotoAsync(Url(query, Seeded.RangeFrom, Seeded.RangeUntil));
        var before = await ui.TableAsync();
        Assert.Contains("idle", before.Keys);

        // The timeline has the samples of both windows.
        long w2From = Seeded.Window2 - 120, w2Until = Seeded.Window2 + 120;
        await ui.ThenLoadedAsync(() => ui.DragTimelineAsync(w2From, w2Until, Seeded.RangeFrom, Seeded.RangeUntil));

        var url = await ui.UrlParamsAsync();
        long from = long.Parse(url["from"], System.Globalization.CultureInfo.InvariantCulture);
        long until = long.Parse(url["until"], System.Globalization.CultureInfo.InvariantCulture);
        // One pixel of the 1400-pixel-wide chart is about 1.6 s of this range.
        Assert.InRange(from, w2From - 5, w2From + 5);
        Assert.InRange(until, w2Until - 5, w2Until + 5);
        var expected = SeededProfiles.Table(Seeded.Stacks("shop.cpu", from, until, Prod));
        Assert.Equal(SeededProfiles.Table(Seeded.Stacks("shop.cpu", Seeded.Window2, Seeded.Window2 + 10, Prod)), expected);
        Assert.Equal(expected, await ui.TableAsync());
        Assert.DoesNotContain("idle", expected.Keys);

        // Back restores the wider range and its graph.
        await ui.ThenLoadedAsync(() => ui.Page.GoBackAsync());
        Assert.Equal(before, await ui.TableAsync());
        ui.AssertNoProblems();
    }

    [Fact]
    public async Task Presets_and_a_custom_range_set_the_time_range()
    {
        await using var ui = await OpenAsync();
        await ui.GotoAsync(Url("shop.cpu{env=\"prod\"}", Seeded.RangeFrom, Seeded.RangeUntil));

        // "Last 5 min": relative times in the URL; nothing was seeded in the last 5 minutes.
        await ui.ThenLoadedAsync(() => ui.Page.ClickAsync("[data-preset='now-5m']"));
        var url = await ui.UrlParamsAsync();
        Assert.Equal(("now-5m", "now"), (url["from"], url["until"]));
        Assert.Equal("true", await ui.Page.GetAttributeAsync("[data-preset='now-5m']", "aria-pressed"));
        Assert.StartsWith("0 samples", await ui.Page.Locator("#status").InnerTextAsync());

        // "Last 1 h" holds both windows.
        await ui.ThenLoadedAsync(() => ui.Page.ClickAsync("[data-preset='now-1h']"));
        Assert.Equal(SeededProfiles.Table(Seeded.Stacks("shop.cpu", Seeded.RangeFrom, Seeded.RangeUntil, Prod)), await ui.TableAsync());

        // A custom range around window 1 (the page's clock is UTC here).
        // A datetime-local input holds "HH:mm" when the seconds are 0 (chromium drops ":00"), else "HH:mm:ss".
        string Local(long seconds) => DateTimeOffset.FromUnixTimeSeconds(seconds).UtcDateTime
            .ToString(seconds % 60 == 0 ? "yyyy-MM-ddTHH:mm" : "yyyy-MM-ddTHH:mm:ss", System.Globalization.CultureInfo.InvariantCulture);
        await ui.Page.FillAsync("#from", Local(Seeded.Window1 - 60));
        await ui.Page.FillAsync("#until", Local(Seeded.Window1 + 60));
        await ui.ThenLoadedAsync(() => ui.Page.ClickAsync("#apply-range"));
        url = await ui.UrlParamsAsync();
        Assert.Equal(((Seeded.Window1 - 60).ToString(System.Globalization.CultureInfo.InvariantCulture), (Seeded.Window1 + 60).ToString(System.Globalization.CultureInfo.InvariantCulture)), (url["from"], url["until"]));
        Assert.Equal(SeededProfiles.Table(Seeded.Stacks("shop.cpu", Seeded.Window1, Seeded.Window1 + 10, Prod)), await ui.TableAsync());
        ui.AssertNoProblems();
    }

    [Fact]
    public async Task A_bad_query_in_the_url_shows_the_servers_reason()
    {
        await using var ui = await fixture.Browser.OpenAsync(fixture.Server.BaseAddress, failedRequestsExpected: true);
        await ui.Page.GotoAsync(Url("shop.cpu{env=~\"(\"}", Seeded.RangeFrom, Seeded.RangeUntil));
        await ui.Page.Locator("body[data-state='error']").WaitForAsync(new() { State = Microsoft.Playwright.WaitForSelectorState.Attached });
        string status = await ui.Page.Locator("#status").InnerTextAsync();
        Assert.Contains("400", status);
        Assert.Contains("query", status);
        // Only the refused request itself is reported: no script error.
        Assert.All(ui.Problems, p => Assert.Contains("400", p));
    }

    [Fact]
    public async Task Search_highlights_matches_click_zooms_into_a_frame_and_reset_returns()
    {
        await using var ui = await OpenAsync();
        // Window 1 of prod: main;work;{compute 300, io 100}, main;idle 50. Siblings are ordered by name
        // (as in pyroscope's trees), so row 2 is idle [0, 50/450) then work [50/450, 1), and under work
        // row 3 is compute [50/450, 350/450) then io [350/450, 1).
        await ui.GotoAsync(Url("shop.cpu{env=\"prod\"}", Seeded.Window1, Seeded.Window1 + 10));
        const int levels = 4;

        // Tooltips name the frame under the mouse with its share and samples.
        string idle = await ui.TooltipAtAsync(0.05, 2, levels);
        Assert.Contains("idle", idle);
        Assert.Contains("11.11%", idle); // 50 / 450
        Assert.Contains("Samples: 50", idle);
        string work = await ui.TooltipAtAsync(0.5, 2, levels);
        Assert.Contains("work", work);
        Assert.Contains("88.89%", work); // 400 / 450
        Assert.Contains("Samples: 400", work);
        Assert.Contains("io", await ui.TooltipAtAsync(0.9, 3, levels));

        // Search: the canvas is redrawn with the query highlighted and the table keeps only matches.
        await ui.Page.FillAsync("[data-testid=flamegraph-search]", "comp");
        await ui.Page.Locator("[data-testid=flamegraph-canvas][data-highlightquery='comp']").WaitForAsync();
        await ui.Page.WaitForFunctionAsync("() => document.querySelectorAll('#flamegraph table.flamegraph-table tbody tr[data-row]').length === 1");
        Assert.Equal(["compute"], (await ui.TableAsync()).Keys);
        await ui.Page.FillAsync("[data-testid=flamegraph-search]", "");
        await ui.Page.Locator("[data-testid=flamegraph-canvas][data-highlightquery='']").WaitForAsync();

        // Click on "work": it fills the width, so the left end of row 2 is now work, not idle, and
        // row 3 splits 300:100 between compute and io.
        var reset = ui.Page.Locator("button[aria-label='Reset View']");
        Assert.True(await reset.IsDisabledAsync());
        await ui.ClickFlameAsync(0.5, 2, levels);
        Assert.True(await reset.IsEnabledAsync());
        Assert.Contains("work", await ui.TooltipAtAsync(0.05, 2, levels));
        Assert.Contains("compute", await ui.TooltipAtAsync(0.70, 3, levels));
        Assert.Contains("io", await ui.TooltipAtAsync(0.80, 3, levels));

        await reset.ClickAsync();
        Assert.True(await reset.IsDisabledAsync());
        Assert.Contains("idle", await ui.TooltipAtAsync(0.05, 2, levels));
        ui.AssertNoProblems();
    }

    [Fact]
    public async Task Diff_view_renders_the_two_ranges_side_by_side()
    {
        await using var ui = await OpenAsync();
        long lf = Seeded.Window1 - 30, lu = Seeded.Window1 + 30, rf = Seeded.Window2 - 30, ru = Seeded.Window2 + 30;
        await ui.GotoAsync(Url("shop.cpu{env=\"prod\"}", Seeded.RangeFrom, Seeded.RangeUntil,
            $"&view=diff&leftFrom={lf}&leftUntil={lu}&rightFrom={rf}&rightUntil={ru}"));

        var left = SeededProfiles.Table(Seeded.Stacks("shop.cpu", lf, lu, Prod));
        var right = SeededProfiles.Table(Seeded.Stacks("shop.cpu", rf, ru, Prod));
        long leftTicks = left["total"].Total, rightTicks = right["total"].Total;
        var expected = left.Keys.Union(right.Keys).ToDictionary(n => n, n =>
            (left.GetValueOrDefault(n).Total, leftTicks, right.GetValueOrDefault(n).Total, rightTicks));
        Assert.Equal(expected, await ui.DiffTableAsync());
        Assert.Equal("true", await ui.Page.GetAttributeAsync("#view-diff", "aria-pressed"));
        await ui.Page.Locator("[data-testid=flamegraph-legend]").WaitForAsync();
        Assert.Equal($"baseline {leftTicks}, comparison {rightTicks} samples", await ui.Page.Locator("#status").InnerTextAsync());

        // Dragging with "comparison" chosen moves the right range: now both sides are window 1.
        await ui.Page.CheckAsync("input[name=side][value=right]");
        await ui.ThenLoadedAsync(() => ui.DragTimelineAsync(lf, lu, Seeded.RangeFrom, Seeded.RangeUntil));
        var url = await ui.UrlParamsAsync();
        Assert.InRange(long.Parse(url["rightFrom"], System.Globalization.CultureInfo.InvariantCulture), lf - 5, lf + 5);
        Assert.Equal(lf.ToString(System.Globalization.CultureInfo.InvariantCulture), url["leftFrom"]);
        var same = await ui.DiffTableAsync();
        Assert.Equal(left.ToDictionary(kv => kv.Key, kv => (kv.Value.Total, leftTicks, kv.Value.Total, leftTicks)), same);
        ui.AssertNoProblems();
    }

    [Fact]
    public async Task Reloading_the_page_url_restores_the_same_view()
    {
        await using var ui = await OpenAsync();
        await ui.GotoAsync(Url("shop.cpu", Seeded.RangeFrom, Seeded.RangeUntil));
        // Build a view with the controls: a label filter, then the diff view.
        await ui.Page.ClickAsync("#add-filter");
        await ui.Page.Locator("#filters select[aria-label='label value'] option[value='prod']").WaitForAsync(new() { State = Microsoft.Playwright.WaitForSelectorState.Attached });
        await ui.ThenLoadedAsync(() => ui.Page.SelectOptionAsync("#filters select[aria-label='label value']", "prod"));
        await ui.ThenLoadedAsync(() => ui.Page.ClickAsync("#view-diff"));
        var table = await ui.DiffTableAsync();
        string status = await ui.Page.Locator("#status").InnerTextAsync();
        string url = ui.Page.Url;

        await using var again = await OpenAsync();
        await again.GotoAsync(url);
        Assert.Equal(url, again.Page.Url);
        Assert.Equal(table, await again.DiffTableAsync());
        Assert.Equal(status, await again.Page.Locator("#status").InnerTextAsync());
        Assert.Equal("shop.cpu", await again.Page.InputValueAsync("#profile"));
        Assert.Equal("env", await again.Page.InputValueAsync("#filters select[aria-label='label name']"));
        Assert.Equal("prod", await again.Page.InputValueAsync("#filters select[aria-label='label value']"));
        Assert.Equal("true", await again.Page.GetAttributeAsync("#view-diff", "aria-pressed"));

        await again.Page.ReloadAsync();
        await again.WaitLoadedAsync(); // a new document: its load count starts again
        Assert.Equal(table, await again.DiffTableAsync());
        ui.AssertNoProblems();
        again.AssertNoProblems();
    }
}
