using System.Globalization;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Microsoft.Playwright;
using ProfileArena.Formats;

namespace ProfileArena.Tests.Formats;

/// <summary>
/// The interactive flame graph in a real browser: Debian's chromium driven by Playwright opens the SVG
/// file (file://, no server) and clicks, searches and reads it as a user would.
/// </summary>
public sealed class FlameGraphSvgBrowserTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("profilearena-svg-").FullName;
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public async ValueTask InitializeAsync()
    {
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new() { ExecutablePath = "/usr/bin/chromium", Headless = true });
    }

    public async ValueTask DisposeAsync()
    {
        if (_browser is not null) await _browser.DisposeAsync();
        _playwright?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Random stacks over a few names that nest in each other (recursion, names that share letters),
    /// so that searches match frames inside matched frames.</summary>
    private static List<(string[] Frames, ulong Count)> RandomStacks(int seed, int count)
    {
        string[] names = ["main", "alpha", "beta", "alphabet", "gamma", "run<T>", "a&b"];
        var random = new Random(seed);
        var stacks = new List<(string[], ulong)>();
        for (int i = 0; i < count; i++)
        {
            int depth = random.Next(1, 9);
            string[] frames = [.. Enumerable.Range(0, depth).Select(_ => names[random.Next(names.Length)])];
            stacks.Add((frames, (ulong)random.Next(1, 50)));
        }
        return stacks;
    }

    private sealed record Graph(string Path, ulong Total, List<(string[] Frames, ulong Count)> Stacks);

    private Graph Write(int seed)
    {
        var stacks = RandomStacks(seed, 60);
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        foreach (var (frames, count) in stacks) tree.Insert(string.Join(';', frames), count);
        string path = Path.Combine(_dir, $"g{seed}.svg");
        using (FileStream file = File.Create(path))
            FlameGraphSvg.Write(tree, file, new FlameGraphSvgOptions { MinWidth = 0, Title = "random <&> graph" }); // every frame drawn
        return new Graph(path, tree.Total, stacks);
    }

    private async Task<(IPage Page, List<string> Errors)> Open(string path)
    {
        IPage page = await _browser!.NewPageAsync(new() { ViewportSize = new() { Width = 1300, Height = 900 } });
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
        page.PageError += (_, e) => errors.Add(e);
        await page.GotoAsync(new Uri(path).AbsoluteUri);
        return (page, errors);
    }

    private static async Task<double> Width(IPage page, int index) =>
        double.Parse(await page.Locator("#pa-frames > g.f").Nth(index).Locator("rect").GetAttributeAsync("width") ?? "nan", CultureInfo.InvariantCulture);

    [Fact]
    public async Task LoadsWithoutErrorsAndIsStillPlainSvg()
    {
        Graph graph = Write(1);
        XDocument svg = XDocument.Load(graph.Path); // well-formed XML, script included
        XNamespace ns = "http://www.w3.org/2000/svg";
        Assert.NotNull(svg.Root!.Element(ns + "script"));
        Assert.All(svg.Descendants(ns + "g").Where(g => (string?)g.Attribute("class") == "f"), g =>
        {
            Assert.NotNull(g.Element(ns + "title"));
            Assert.NotNull(g.Element(ns + "rect")); // renders as a picture where scripts are off
        });

        var (page, errors) = await Open(graph.Path);
        Assert.Equal("interactive", await page.Locator("#pa-flamegraph").GetAttributeAsync("class"));
        Assert.True(await page.Locator("#pa-search").IsVisibleAsync());
        Assert.False(await page.Locator("#pa-reset-zoom").IsVisibleAsync());
        Assert.Empty(errors);
    }

    [Fact]
    public async Task StaticWhenScriptsAreOff()
    {
        Graph graph = Write(2);
        await using IBrowserContext context = await _browser!.NewContextAsync(new() { JavaScriptEnabled = false });
        IPage page = await context.NewPageAsync();
        await page.GotoAsync(new Uri(graph.Path).AbsoluteUri);
        int frames = await page.Locator("#pa-frames > g.f").CountAsync();
        Assert.True(frames > 10);
        Assert.True(await page.Locator("#pa-frames > g.f").First.Locator("rect").IsVisibleAsync());
        Assert.False(await page.Locator("#pa-search").IsVisibleAsync()); // no dead controls in a static picture
    }

    [Fact]
    public async Task ClickZoomsIntoAFrameAndResetRestores()
    {
        Graph graph = Write(3);
        var (page, errors) = await Open(graph.Path);
        ILocator frames = page.Locator("#pa-frames > g.f");
        int count = await frames.CountAsync();
        var before = new List<string?>();
        for (int i = 0; i < count; i++) before.Add(await frames.Nth(i).Locator("rect").GetAttributeAsync("width"));

        // A frame at depth 2 with siblings or cousins elsewhere: pick the narrowest-but-visible one.
        int target = -1;
        double narrowest = double.MaxValue;
        for (int i = 0; i < count; i++)
        {
            if (await frames.Nth(i).GetAttributeAsync("data-d") != "2") continue;
            double w = await Width(page, i);
            if (w > 20 && w < narrowest) { narrowest = w; target = i; }
        }
        Assert.True(target >= 0);
        ILocator frame = frames.Nth(target);
        long x0 = long.Parse((await frame.GetAttributeAsync("data-x"))!, CultureInfo.InvariantCulture);
        long w0 = long.Parse((await frame.GetAttributeAsync("data-w"))!, CultureInfo.InvariantCulture);
        await frame.Locator("rect").ClickAsync();

        Assert.Equal(1180, await Width(page, target), 1); // full width: 1200 less 2 x 10 padding
        Assert.True(await page.Locator("#pa-reset-zoom").IsVisibleAsync());
        for (int i = 0; i < count; i++)
        {
            ILocator f = frames.Nth(i);
            int d = int.Parse((await f.GetAttributeAsync("data-d"))!, CultureInfo.InvariantCulture);
            long x = long.Parse((await f.GetAttributeAsync("data-x"))!, CultureInfo.InvariantCulture);
            long w = long.Parse((await f.GetAttributeAsync("data-w"))!, CultureInfo.InvariantCulture);
            bool inSubtree = d >= 2 && x >= x0 && x + w <= x0 + w0;
            bool ancestor = d < 2 && x <= x0 && x + w >= x0 + w0;
            Assert.Equal(inSubtree || ancestor, await f.IsVisibleAsync());
            if (ancestor) Assert.Equal(1180, await Width(page, i), 1);
            if (inSubtree) Assert.Equal(1180.0 * w / w0, await Width(page, i), 1);
        }

        await page.Locator("#pa-reset-zoom").ClickAsync();
        for (int i = 0; i < count; i++)
        {
            Assert.True(await frames.Nth(i).IsVisibleAsync());
            Assert.Equal(double.Parse(before[i]!, CultureInfo.InvariantCulture), await Width(page, i), 1);
        }
        Assert.False(await page.Locator("#pa-reset-zoom").IsVisibleAsync());
        Assert.Empty(errors);
    }

    [Theory]
    [InlineData("^alpha")]
    [InlineData("a")]
    [InlineData("bet")]
    [InlineData("^(beta|gamma)$")]
    [InlineData("<T>|&")]
    [InlineData("nothing-matches-this")]
    public async Task SearchHighlightsMatchesAndShowsTheirShareCountedOnce(string pattern)
    {
        Graph graph = Write(4);
        var (page, errors) = await Open(graph.Path);
        page.Dialog += async (_, dialog) => await dialog.AcceptAsync(pattern);
        await page.Locator("#pa-search").ClickAsync();

        // Oracle from the input, not the SVG: a sample is matched when any frame on its stack matches,
        // so a match inside a match is not counted twice.
        var regex = new Regex(pattern, RegexOptions.CultureInvariant);
        ulong matchedSamples = 0;
        foreach (var (frames, count) in graph.Stacks)
            if (frames.Any(regex.IsMatch)) matchedSamples += count;
        double expected = 100.0 * matchedSamples / graph.Total;

        ILocator shown = page.Locator("#pa-matched");
        string text = await shown.TextContentAsync() ?? "";
        Assert.StartsWith($"Matched: {expected.ToString("0.00", CultureInfo.InvariantCulture)}%", text, StringComparison.Ordinal);
        Assert.Equal(expected, double.Parse((await shown.GetAttributeAsync("data-percent"))!, CultureInfo.InvariantCulture), 9);

        ILocator frames2 = page.Locator("#pa-frames > g.f");
        int count2 = await frames2.CountAsync();
        for (int i = 0; i < count2; i++)
        {
            ILocator f = frames2.Nth(i);
            string title = await f.Locator("title").TextContentAsync() ?? "";
            string name = title[..title.LastIndexOf(" (self: ", StringComparison.Ordinal)];
            bool shouldMatch = await f.GetAttributeAsync("data-d") != "0" && regex.IsMatch(name);
            string fill = await f.Locator("rect").EvaluateAsync<string>("r => getComputedStyle(r).fill");
            Assert.Equal(shouldMatch, fill == "rgb(230, 0, 230)");
        }
        Assert.Empty(errors);
    }

    [Fact]
    public async Task TooltipsCarryNameSamplesAndPercent()
    {
        Graph graph = Write(5);
        var (page, errors) = await Open(graph.Path);
        ILocator frame = page.Locator("#pa-frames > g.f[data-d='1']").First;
        ulong total = ulong.Parse((await frame.GetAttributeAsync("data-w"))!, CultureInfo.InvariantCulture);
        string title = await frame.Locator("title").TextContentAsync() ?? "";
        string percent = (100.0 * total / graph.Total).ToString("0.##", CultureInfo.InvariantCulture);
        Assert.Matches(@"^\S.* \(self: [\d,]+ samples, total: [\d,]+ samples, [\d.]+%\)$", title);
        Assert.Contains($"total: {total:N0} samples, {percent}%", title, StringComparison.Ordinal);

        await frame.Locator("rect").HoverAsync();
        Assert.Equal(title, await page.Locator("#pa-details").TextContentAsync());
        Assert.Empty(errors);
    }

    [Fact]
    public async Task InvalidRegexSaysSoWithoutAnError()
    {
        Graph graph = Write(6);
        var (page, errors) = await Open(graph.Path);
        page.Dialog += async (_, dialog) => await dialog.AcceptAsync("(unclosed");
        await page.Locator("#pa-search").ClickAsync();
        Assert.StartsWith("Invalid regular expression", await page.Locator("#pa-matched").TextContentAsync() ?? "", StringComparison.Ordinal);
        Assert.Empty(errors);
    }
}
