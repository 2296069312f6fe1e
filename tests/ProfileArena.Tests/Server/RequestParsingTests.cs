using ProfileArena.Server.Hosting;
using ProfileArena.Server.Http;
using ProfileArena.Server.Ingest;
using ProfileArena.Server.Query;
using ProfileArena.Server.Storage;

namespace ProfileArena.Tests.Server;

/// <summary>The request parsers: pyroscope's attime, segment-key names, query selectors.</summary>
public class RequestParsingTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);
    private static readonly ServerOptions Limits = new();

    [Fact]
    public void TimeScalesByDigitCountAsPyroscopeDoes()
    {
        var random = new Random(7);
        for (int i = 0; i < 1000; i++)
        {
            long seconds = random.NextInt64(1_000_000_000, 9_000_000_000); // 10 digits; ×10^9 still fits a long
            Assert.Equal(seconds, TimeParameter.Parse("from", seconds.ToString(), Now));
            long ms = seconds * 1000 + random.Next(1000);
            Assert.Equal(seconds, TimeParameter.Parse("from", ms.ToString(), Now));
            long us = seconds * 1_000_000 + random.Next(1_000_000);
            Assert.Equal(seconds, TimeParameter.Parse("from", us.ToString(), Now));
            long ns = seconds * 1_000_000_000 + random.Next(1_000_000_000);
            Assert.Equal(seconds, TimeParameter.Parse("from", ns.ToString(), Now));
        }
        Assert.Equal(new DateTimeOffset(2021, 3, 14, 0, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds(), TimeParameter.Parse("from", "20210314", Now));
        Assert.Equal(1615709120, TimeParameter.Parse("from", "1_615_709_120", Now));
        Assert.Equal(0, TimeParameter.Parse("from", "0", Now));
    }

    [Theory]
    [InlineData("now", 0)]
    [InlineData("now-1h", -3600)]
    [InlineData("now-30m", -1800)]
    [InlineData("now-1h30m", -5400)]
    [InlineData("now-2d", -172800)]
    [InlineData("now-1w", -604800)]
    [InlineData("now+5s", 5)]
    [InlineData("now-1M", -2592000)]
    [InlineData("now-15min", -900)]
    [InlineData("-1h", -3600)]
    public void RelativeTimes(string text, long delta) =>
        Assert.Equal(Now.ToUnixTimeSeconds() + delta, TimeParameter.Parse("from", text, Now));

    [Theory]
    [InlineData("yesterday", "byte 0")]
    [InlineData("now-", "byte 4")]
    [InlineData("now-1x", "unknown unit 'x'")]
    [InlineData("now-h", "expected a number")]
    [InlineData("-5", "negative unix time")]
    [InlineData("123456789012345678901", "too large")]
    [InlineData("999999999999", "after 10000000000 (year 2286")]
    [InlineData("10000000001", "after 10000000000")]
    [InlineData("now-100000y", "out of range")]
    [InlineData("12.5", "byte 0")]
    public void BadTimesAre400WithWhere(string text, string expected)
    {
        var e = Assert.Throws<RequestException>(() => TimeParameter.Parse("until", text, Now));
        Assert.Equal(400, e.Status);
        Assert.StartsWith("until: ", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void IngestNamesParseLikePyroscopeSegmentKeys()
    {
        IngestName n = IngestName.Parse("my-app.cpu{env=prod, region = eu-west-1 ,pod=a:b/c}", Limits);
        Assert.Equal("my-app.cpu", n.App);
        Assert.Equal([new Label("env", "prod"), new Label("region", "eu-west-1"), new Label("pod", "a:b/c")], n.Labels);
        Assert.Empty(IngestName.Parse("app", Limits).Labels);
        Assert.Empty(IngestName.Parse("app{}", Limits).Labels);
        Assert.Equal("v", IngestName.Parse("app{k=v,}", Limits).Labels.Single().Value);
        Assert.Equal("", IngestName.Parse("app{k=}", Limits).Labels.Single().Value);
        Assert.Equal("ünï ✓", IngestName.Parse("app{k=ünï ✓}", Limits).Labels.Single().Value);
    }

    [Fact]
    public void IngestNamesRoundTripOverRandomLabelSets()
    {
        var random = new Random(11);
        const string nameChars = "abcXYZ019_.";
        const string valueChars = "abc XYZ-019_.:/=é✓";
        for (int i = 0; i < 500; i++)
        {
            string app = "app" + new string(Enumerable.Range(0, random.Next(5)).Select(_ => "ab-./_9"[random.Next(7)]).ToArray());
            var labels = new Dictionary<string, string>();
            for (int k = random.Next(6); k > 0; k--)
            {
                string name = "l" + new string(Enumerable.Range(0, random.Next(6)).Select(_ => nameChars[random.Next(nameChars.Length)]).ToArray());
                string value = new string(Enumerable.Range(0, random.Next(8)).Select(_ => valueChars[random.Next(valueChars.Length)]).ToArray()).Trim();
                labels[name] = value;
            }
            string text = app + "{" + string.Join(",", labels.Select(kv => $"{kv.Key}={kv.Value}")) + "}";
            IngestName parsed = IngestName.Parse(text, Limits);
            Assert.Equal(app, parsed.App);
            Assert.Equal(labels.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => new Label(kv.Key, kv.Value)),
                parsed.Labels.OrderBy(l => l.Name, StringComparer.Ordinal));
        }
    }

    [Theory]
    [InlineData(null, "required")]
    [InlineData("", "required")]
    [InlineData("{env=prod}", "application name is empty")]
    [InlineData("my app", "character ' ' is not allowed")]
    [InlineData("app{env=prod", "missing '}'")]
    [InlineData("app{env}", "expected 'name=value'")]
    [InlineData("app{=v}", "empty label name")]
    [InlineData("app{e-nv=v}", "character '-' is not allowed in label name")]
    [InlineData("app{__name__=x}", "reserved")]
    [InlineData("app{a=1,a=2}", "given twice")]
    [InlineData("app{a=1}x", "after '}'")]
    [InlineData("app{a=1,,b=2}", "empty label")]
    [InlineData("app{a=\u0001}", "control character")]
    public void BadIngestNamesAre400(string? text, string expected)
    {
        var e = Assert.Throws<RequestException>(() => IngestName.Parse(text, Limits));
        Assert.Equal(400, e.Status);
        Assert.Contains(expected, e.Message);
        Assert.StartsWith("name: ", e.Message);
    }

    [Fact]
    public void IngestNameLimits()
    {
        var small = new ServerOptions { MaxLabels = 3, MaxNameLength = 10, MaxLabelNameLength = 5, MaxLabelValueLength = 4 };
        Assert.Contains("more than 3 labels", Assert.Throws<RequestException>(() => IngestName.Parse("a{a=1,b=2,c=3,d=4}", small)).Message);
        Assert.Contains("longer than 10", Assert.Throws<RequestException>(() => IngestName.Parse("abcdefghijk", small)).Message);
        Assert.Contains("longer than 5", Assert.Throws<RequestException>(() => IngestName.Parse("a{abcdef=1}", small)).Message);
        Assert.Contains("longer than 4", Assert.Throws<RequestException>(() => IngestName.Parse("a{a=12345}", small)).Message);
        Assert.Equal(3, IngestName.Parse("a{a=1,b=2,c=3}", small).Labels.Count);
        string huge = "app{k=" + new string('v', 1 << 20) + "}";
        Assert.Equal(400, Assert.Throws<RequestException>(() => IngestName.Parse(huge, Limits)).Status);
    }

    private static SeriesKey Key(string name, params (string, string)[] labels) => new("t", name, labels.Select(l => new Label(l.Item1, l.Item2)));

    [Fact]
    public void SelectorsParseAllFourMatchers()
    {
        ParsedSelector s = SelectorParser.Parse("query", "app.cpu{env=\"prod\", region=~\"eu-.*\", pod!=\"x\" ,host!~'a|b'}", true, 4096);
        Assert.Equal("app.cpu", s.Name);
        Assert.Equal(["env=\"prod\"", "region=~\"eu-.*\"", "pod!=\"x\"", "host!~\"a|b\""], s.Matchers.Select(m => m.ToString()));
        Assert.True(s.Matches(Key("app.cpu", ("env", "prod"), ("region", "eu-west"), ("host", "c"))));
        Assert.False(s.Matches(Key("app.cpu", ("env", "prod"), ("region", "us-east"), ("host", "c"))));
        Assert.False(s.Matches(Key("app.cpu", ("env", "prod"), ("region", "eu-west"), ("host", "a"))));
        Assert.False(s.Matches(Key("app.cpu", ("env", "prod"), ("region", "eu-west"), ("pod", "x"))));
        Assert.False(s.Matches(Key("app.wall", ("env", "prod"), ("region", "eu-west"))));
        Assert.Equal("app.cpu", SelectorParser.Parse("query", "  app.cpu  ", true, 4096).Name);
        Assert.Equal("app.cpu", SelectorParser.Parse("query", "{__name__=\"app.cpu\", a=\"b\"}", true, 4096).Name);
        Assert.Null(SelectorParser.Parse("query", "{a=\"b\"}", false, 4096).Name);
        Assert.Equal("q\"\\\n", SelectorParser.Parse("query", "a{k=\"q\\\"\\\\\\n\"}", true, 4096).Matchers[0].Value);
        Assert.Equal("raw\\n", SelectorParser.Parse("query", "a{k=`raw\\n`}", true, 4096).Matchers[0].Value);
    }

    [Fact]
    public void SelectorsRoundTripOverRandomMatchers()
    {
        var random = new Random(5);
        string[] ops = ["=", "!=", "=~", "!~"];
        for (int i = 0; i < 500; i++)
        {
            var parts = new List<(string Name, string Op, string Value)>();
            for (int k = random.Next(5); k > 0; k--)
            {
                string value = new string(Enumerable.Range(0, random.Next(6)).Select(_ => "ab\"\\ {},é"[random.Next(9)]).ToArray());
                string op = ops[random.Next(4)];
                if (op.Contains('~')) value = "[ab]*"; // always a valid regex
                parts.Add(($"l{random.Next(100)}", op, value));
            }
            string text = "svc.cpu{" + string.Join(", ", parts.Select(p => $"{p.Name}{p.Op}\"{p.Value.Replace("\\", "\\\\").Replace("\"", "\\\"")}\"")) + "}";
            ParsedSelector parsed = SelectorParser.Parse("query", text, true, 4096);
            Assert.Equal(parts.Select(p => (p.Name, p.Value)), parsed.Matchers.Select(m => (m.Name, m.Value)));
        }
    }

    [Theory]
    [InlineData("", "is required")]
    [InlineData("{a=\"b\"}", "names no profile (e.g. app.cpu{...}) at byte 0")]
    [InlineData("app cpu", "character 'c' is not allowed")]
    [InlineData("app{", "missing '}'")]
    [InlineData("app{a=\"b\"", "missing '}' at byte 9")]
    [InlineData("app{a=b}", "expected a quoted value (\"…\") at byte 6")]
    [InlineData("app{a>\"b\"}", "expected one of = != =~ !~ at byte 5")]
    [InlineData("app{a=\"b}", "unterminated string")]
    [InlineData("app{a=\"b\" c=\"d\"}", "expected ',' or '}' at byte 10")]
    [InlineData("app{a=~\"(\"}", "invalid regular expression")]
    [InlineData("app{a=~\"(?<=x)y\"}", "invalid regular expression")] // look-behind: not in the non-backtracking engine
    [InlineData("app{a=\"\\q\"}", "unknown escape")]
    [InlineData("app{} x", "unexpected text after '}'")]
    [InlineData("app{__name__!=\"x\"}", "__name__ takes only '='")]
    [InlineData("app{__name__=\"other\"}", "contradicts")]
    [InlineData("é{a=\"b\"}", "expected a profile name or '{' at byte 0")]
    public void BadSelectorsAre400WithByteOffset(string text, string expected)
    {
        var e = Assert.Throws<RequestException>(() => SelectorParser.Parse("query", text, true, 4096));
        Assert.Equal(400, e.Status);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void CatastrophicRegexRunsInLinearTime()
    {
        // (a+)+$ on "aaaa…b" takes exponential time in a backtracking engine; here it is one linear scan.
        ParsedSelector s = SelectorParser.Parse("query", "app{k=~\"(a+)+c\"}", true, 4096);
        Assert.False(s.Matches(Key("app", ("k", new string('a', 100_000) + "b"))));
        Assert.True(s.Matches(Key("app", ("k", new string('a', 1000) + "c"))));
        Assert.Contains("longer than", Assert.Throws<RequestException>(() => SelectorParser.Parse("query", "app{k=~\"" + new string('a', 2000) + "\"}", true, 4096)).Message);
        Assert.Contains("longer than 4096", Assert.Throws<RequestException>(() => SelectorParser.Parse("query", "app{k=\"" + new string('a', 5000) + "\"}", true, 4096)).Message);
    }

    [Theory]
    [InlineData("http://127.0.0.1:4040", true)]
    [InlineData("http://127.1.2.3:0", true)]
    [InlineData("http://localhost:4040", true)]
    [InlineData("http://[::1]:4040", true)]
    [InlineData("http://0.0.0.0:4040", false)]
    [InlineData("http://*:4040", false)]
    [InlineData("http://+:4040", false)]
    [InlineData("http://[::]:4040", false)]
    [InlineData("http://10.1.2.3:4040", false)]
    [InlineData("http://example.com:4040", false)]
    public void LoopbackPolicy(string url, bool loopback)
    {
        Assert.Equal(loopback, LoopbackGuard.IsLoopback(url));
        if (loopback) LoopbackGuard.Check([url], authenticated: false, allowNonLoopback: false);
        else Assert.Contains("refusing to listen", Assert.Throws<InvalidOperationException>(() => LoopbackGuard.Check([url], false, false)).Message);
        LoopbackGuard.Check([url], authenticated: true, allowNonLoopback: false);
        LoopbackGuard.Check([url], authenticated: false, allowNonLoopback: true);
    }
}
