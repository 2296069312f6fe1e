using System.Globalization;
using System.Text.Json;
using Microsoft.Playwright;

namespace ProfileArena.Tests.Server.WebUi;

/// <summary>One Playwright driver and one Debian chromium per test class (launching is the slow part);
/// each test gets its own context (cookies, sessionStorage) and page.</summary>
public sealed class BrowserSession : IAsyncDisposable
{
    public const string ChromiumPath = "/usr/bin/chromium";

    private BrowserSession(IPlaywright playwright, IBrowser browser)
    {
        Playwright = playwright;
        Browser = browser;
    }

    public IPlaywright Playwright { get; }
    public IBrowser Browser { get; }

    public static async Task<BrowserSession> LaunchAsync()
    {
        if (!File.Exists(ChromiumPath))
            throw new FileNotFoundException("Debian's chromium is missing: apt-get install -y chromium (.ci/run does)", ChromiumPath);
        var playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = ChromiumPath, Headless = true, Timeout = 60_000 });
        return new BrowserSession(playwright, browser);
    }

    public async Task<UiPage> OpenAsync(Uri server, bool failedRequestsExpected = false)
    {
        var context = await Browser.NewContextAsync(new() { ViewportSize = new() { Width = 1400, Height = 1000 }, BaseURL = server.ToString(), TimezoneId = "UTC", Locale = "en-US" });
        context.SetDefaultTimeout(15_000);
        var page = await context.NewPageAsync();
        return new UiPage(context, page, failedRequestsExpected);
    }

    public async ValueTask DisposeAsync()
    {
        await Browser.DisposeAsync();
        Playwright.Dispose();
    }
}

/// <summary>
/// A page of the web UI with what a person sees read from the DOM: the flame graph component's table
/// rows (<c>data-row</c> holds the exact numbers), its tooltip, the page's status; and every console
/// error, page error, failed request and HTTP error response, kept in <see cref="Problems"/>.
/// </summary>
public sealed class UiPage : IAsyncDisposable
{
    private readonly IBrowserContext _context;
    private readonly List<string> _problems = [];

    public UiPage(IBrowserContext context, IPage page, bool failedRequestsExpected)
    {
        _context = context;
        Page = page;
        page.Console += (_, m) => { if (m.Type == "error") Add($"console error: {m.Text}"); };
        page.PageError += (_, e) => Add($"page error: {e}");
        page.RequestFailed += (_, r) => Add($"request failed: {r.Method} {r.Url}: {r.Failure}");
        page.Response += (_, r) => { if (r.Status >= 400 && !failedRequestsExpected) Add($"HTTP {r.Status}: {r.Request.Method} {r.Url}"); };
    }

    public IPage Page { get; }

    public IReadOnlyList<string> Problems { get { lock (_problems) return [.. _problems]; } }

    private void Add(string problem) { lock (_problems) _problems.Add(problem); }

    public void AssertNoProblems() => Assert.True(Problems.Count == 0, "the page reported problems:\n" + string.Join('\n', Problems));

    /// <summary>Finished loads so far (the page counts them in body[data-loads]).</summary>
    public async Task<int> LoadsAsync() =>
        int.Parse(await Page.EvaluateAsync<string>("() => document.body.dataset.loads || '0'"), CultureInfo.InvariantCulture);

    /// <summary>Waits until a load that began after <paramref name="loadsBefore"/> loads has finished, and
    /// fails with the page's status when it did not end ready.</summary>
    public async Task WaitLoadedAsync(int loadsBefore = 0)
    {
        await Page.WaitForFunctionAsync(
            "n => Number(document.body.dataset.loads || 0) > n && document.body.dataset.state !== 'loading'", loadsBefore);
        string state = await Page.EvaluateAsync<string>("() => document.body.dataset.state");
        string status = await Page.Locator("#status").InnerTextAsync();
        Assert.True(state == "ready", $"the page ended in state {state}: {status}\n{string.Join('\n', Problems)}");
    }

    public async Task GotoAsync(string pathAndQuery)
    {
        await Page.GotoAsync(pathAndQuery);
        await WaitLoadedAsync();
    }

    /// <summary>Runs <paramref name="action"/> and waits for the re-query it starts.</summary>
    public async Task ThenLoadedAsync(Func<Task> action)
    {
        int before = await LoadsAsync();
        await action();
        await WaitLoadedAsync(before);
    }

    /// <summary>The single-view table: function → (self, total), from the rows' <c>data-row="single;name;self;total"</c>.</summary>
    public async Task<Dictionary<string, (long Self, long Total)>> TableAsync()
    {
        var rows = await RowsAsync("single");
        return rows.ToDictionary(r => r[0], r => (long.Parse(r[1], CultureInfo.InvariantCulture), long.Parse(r[2], CultureInfo.InvariantCulture)));
    }

    /// <summary>The diff-view table: function → (left total, left ticks, right total, right ticks).</summary>
    public async Task<Dictionary<string, (long Left, long LeftTicks, long Right, long RightTicks)>> DiffTableAsync()
    {
        var rows = await RowsAsync("double");
        return rows.ToDictionary(r => r[0], r => (long.Parse(r[1], CultureInfo.InvariantCulture), long.Parse(r[2], CultureInfo.InvariantCulture),
            long.Parse(r[3], CultureInfo.InvariantCulture), long.Parse(r[4], CultureInfo.InvariantCulture)));
    }

    private async Task<List<string[]>> RowsAsync(string format)
    {
        var rows = Page.Locator("#flamegraph table.flamegraph-table tbody tr[data-row]");
        await rows.First.WaitForAsync();
        string[] dataRows = await rows.EvaluateAllAsync<string[]>("rs => rs.map(r => r.dataset.row)");
        var parsed = new List<string[]>();
        foreach (string row in dataRows)
        {
            string[] parts = row.Split(';');
            Assert.True(parts[0] == format, $"table row '{row}' is not of the {format} view");
            parsed.Add(parts[1..]);
        }
        return parsed;
    }

    public Task<string[]> OptionsAsync(string selectSelector) =>
        Page.Locator(selectSelector + " option").EvaluateAllAsync<string[]>("os => os.map(o => o.value)");

    public async Task<Dictionary<string, string>> UrlParamsAsync()
    {
        string search = await Page.EvaluateAsync<string>("() => JSON.stringify(Object.fromEntries(new URLSearchParams(location.search)))");
        return JsonSerializer.Deserialize<Dictionary<string, string>>(search)!;
    }

    /// <summary>Hovers the flame graph at <paramref name="fraction"/> of its width on row <paramref name="level"/>
    /// (0 = the root; rows are canvas height / <paramref name="levels"/> high) and returns the tooltip's text.</summary>
    public async Task<string> TooltipAtAsync(double fraction, int level, int levels)
    {
        var (x, y) = await FlamePointAsync(fraction, level, levels);
        // Leave the graph first so the tooltip hides: the text read below is then the new frame's,
        // not the previous one's still on screen.
        var tip = Page.Locator("[data-testid=tooltip][style*='visibility: visible']");
        await Page.Mouse.MoveAsync(2, 2);
        await tip.WaitForAsync(new() { State = WaitForSelectorState.Detached });
        await Page.Mouse.MoveAsync(x - 3, y);
        await Page.Mouse.MoveAsync(x, y, new() { Steps = 3 });
        await tip.WaitForAsync();
        return System.Text.RegularExpressions.Regex.Replace(await tip.InnerTextAsync(), @"\s+", " ").Trim();
    }

    public async Task ClickFlameAsync(double fraction, int level, int levels)
    {
        var (x, y) = await FlamePointAsync(fraction, level, levels);
        await Page.Mouse.ClickAsync(x, y);
    }

    private async Task<(float X, float Y)> FlamePointAsync(double fraction, int level, int levels)
    {
        var box = await Page.Locator("[data-testid=flamegraph-canvas]").BoundingBoxAsync() ?? throw new InvalidOperationException("no flame graph canvas");
        float rowHeight = box.Height / levels;
        return ((float)(box.X + fraction * box.Width), box.Y + rowHeight * (level + 0.5f));
    }

    /// <summary>Drags across the timeline chart from time <paramref name="from"/> to <paramref name="until"/>
    /// (unix seconds; the chart's x axis spans [<paramref name="axisFrom"/>, <paramref name="axisUntil"/>]).</summary>
    public async Task DragTimelineAsync(long from, long until, long axisFrom, long axisUntil)
    {
        var box = await Page.Locator("#timeline .u-over").BoundingBoxAsync() ?? throw new InvalidOperationException("no timeline chart");
        float X(long t) => (float)(box.X + (double)(t - axisFrom) / (axisUntil - axisFrom) * box.Width);
        float y = box.Y + box.Height / 2;
        await Page.Mouse.MoveAsync(X(from), y);
        await Page.Mouse.DownAsync();
        await Page.Mouse.MoveAsync(X(until), y, new() { Steps = 5 });
        await Page.Mouse.UpAsync();
    }

    public async ValueTask DisposeAsync() => await _context.CloseAsync();
}
