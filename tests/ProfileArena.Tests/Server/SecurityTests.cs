using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Server;

/// <summary>Authentication, tenant isolation, and a barrage of hostile requests: every one gets a 4xx that
/// says what is wrong, never a 5xx, and nothing stored changes.</summary>
public class SecurityTests
{
    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private const string AcmeKey = "acme-secret-key", GlobexKey = "globex-other-key";
    private static string Basic(string user, string password) => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}"));

    private static Task<InProcessServer> TwoTenants() =>
        InProcessServer.Start($"--Auth:Tenants:acme={AcmeKey}", $"--Auth:Tenants:globex={GlobexKey}");

    [Fact]
    public async Task MissingOrWrongKeysAre401()
    {
        await using var server = await TwoTenants();
        long t = Now;
        foreach (string? auth in new[] { null, "Bearer nope", "Bearer " + AcmeKey + "x", Basic("acme", "nope"), Basic("globex", AcmeKey), "Basic !!!", "Basic " + Convert.ToBase64String("nocolon"u8), "Digest abc" })
        {
            using var ingest = await Api.IngestFolded(server.Client, "app.cpu", "a 1", t, t, auth);
            Assert.Equal(HttpStatusCode.Unauthorized, ingest.StatusCode);
            Assert.Contains("Bearer", ingest.Headers.WwwAuthenticate.ToString());
            foreach (string path in new[] { "/render?query=app.cpu", "/label-values?label=__name__", "/label-names", "/api/top?query=app.cpu", "/api/pprof?query=app.cpu", "/render-diff?leftQuery=a&rightQuery=a" })
                Assert.Equal(HttpStatusCode.Unauthorized, (await Api.Get(server.Client, path, auth)).Status);
        }
        // Health and metrics need no key.
        Assert.Equal(HttpStatusCode.OK, (await Api.Get(server.Client, "/healthz")).Status);
        Assert.Equal(HttpStatusCode.OK, (await Api.Get(server.Client, "/readyz")).Status);
        Assert.Equal(HttpStatusCode.OK, (await Api.Get(server.Client, "/metrics")).Status);
        // Nothing was stored by the refused requests.
        Assert.Empty(await Api.Stacks(server.Client, "app.cpu", "Bearer " + AcmeKey));
        Assert.Empty(await Api.Stacks(server.Client, "app.cpu", "Bearer " + GlobexKey));
    }

    [Fact]
    public async Task TenantsNeverSeeEachOther()
    {
        await using var server = await TwoTenants();
        long t = Now - 30;
        string acme = "Bearer " + AcmeKey;
        Assert.Equal(HttpStatusCode.OK, (await Api.IngestFolded(server.Client, "shared.cpu{env=prod}", "acme;only 7", t, t, acme)).StatusCode);
        // Basic auth: password = key, user = the tenant (or empty).
        Assert.Equal(HttpStatusCode.OK, (await Api.IngestFolded(server.Client, "shared.cpu{env=prod}", "globex;only 11", t, t, Basic("globex", GlobexKey))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Api.IngestFolded(server.Client, "globex.private.cpu{team=x}", "g 1", t, t, Basic("", GlobexKey))).StatusCode);

        Assert.Equal(new Dictionary<string, ulong> { ["acme;only"] = 7 }, await Api.Stacks(server.Client, "shared.cpu", acme));
        Assert.Equal(new Dictionary<string, ulong> { ["globex;only"] = 11 }, await Api.Stacks(server.Client, "shared.cpu", "Bearer " + GlobexKey));
        var (_, names) = await Api.Get(server.Client, "/label-values?label=__name__", acme);
        Assert.Equal("[\"shared.cpu\"]", names);
        var (_, labels) = await Api.Get(server.Client, "/label-names", acme);
        Assert.DoesNotContain("team", labels);
        Assert.Empty(await Api.Stacks(server.Client, "globex.private.cpu", acme));
        var top = await Api.GetJson(server.Client, "/api/top?query=shared.cpu&from=0&until=now", acme);
        Assert.Equal(7UL, top.GetProperty("total").GetUInt64());
        var diff = await Api.GetJson(server.Client, $"/render-diff?leftQuery=shared.cpu&leftFrom=0&leftUntil=now&rightQuery=globex.private.cpu&rightFrom=0&rightUntil=now", acme);
        Assert.Equal((7UL, 0UL), (diff.GetProperty("leftTicks").GetUInt64(), diff.GetProperty("rightTicks").GetUInt64()));
    }

    [Fact]
    public async Task ConfigurationErrorsFailAtStart()
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => InProcessServer.Start("--Auth:Tenants:a=same", "--Auth:Tenants:b=same"));
        Assert.Contains("share one API key", e.Message);
        e = await Assert.ThrowsAsync<InvalidOperationException>(() => InProcessServer.Start("--Auth:Tenants:a b=k"));
        Assert.Contains("tenant name", e.Message);
    }

    private static byte[] Gzip(long zeros)
    {
        using var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            byte[] block = new byte[1 << 20];
            for (long left = zeros; left > 0; left -= block.Length) gz.Write(block, 0, (int)Math.Min(block.Length, left));
        }
        return output.ToArray();
    }

    private static HttpRequestMessage Post(string query, byte[] body, string? contentType = "application/octet-stream", string? encoding = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/ingest?" + query) { Content = new ByteArrayContent(body) };
        if (contentType is not null) request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        if (encoding is not null) request.Content.Headers.ContentEncoding.Add(encoding);
        return request;
    }

    /// <summary>With Expect: 100-continue the client sends the body only when asked, so a 413 for a
    /// declared length arrives without a broken pipe.</summary>
    private static HttpRequestMessage Expecting100(HttpRequestMessage request)
    {
        request.Headers.ExpectContinue = true;
        return request;
    }

    [Fact]
    public async Task HostileRequestsGet4xxAndChangeNothing()
    {
        await using var server = await InProcessServer.Start("--Server:MaxRequestBodyBytes=4000000", "--Server:MaxDecompressedBytes=8000000");
        long t = Now - 30;
        Assert.Equal(HttpStatusCode.OK, (await Api.IngestFolded(server.Client, "victim.cpu{env=prod}", "main;work 42\n", t, t)).StatusCode);
        async Task<string> State() =>
            string.Join("|", (await Api.Get(server.Client, "/label-names")).Body, (await Api.Get(server.Client, "/label-values?label=__name__")).Body,
                string.Join(",", (await Api.Stacks(server.Client, "victim.cpu")).Select(kv => kv.Key + "=" + kv.Value)));
        string before = await State();
        byte[] pprof = File.ReadAllBytes(Path.Combine(SharedData.TestData, "pprof/google-pprof/sample.cpu"));
        string name = "name=victim.cpu%7Benv%3Dprod%7D&from=" + t;
        var form = new MultipartFormDataContent("b0undary") { { new ByteArrayContent(pprof), "wrong", "wrong" } };
        byte[] formBody = await form.ReadAsByteArrayAsync(TestContext.Current.CancellationToken);

        var cases = new List<(string What, Func<HttpRequestMessage> Request, int[] Statuses, string Says)>
        {
            ("gzip bomb as pprof", () => Post(name + "&format=pprof", Gzip(256L << 20)), [413], "decompresses to more than"),
            ("gzip bomb as Content-Encoding", () => Post(name, Gzip(256L << 20), "text/plain", "gzip"), [413], "decompresses to more than"),
            ("body over the limit", () => Expecting100(Post(name, new byte[5_000_000], "text/plain")), [413], "over the limit of 4000000"),
            ("unknown Content-Encoding", () => Post(name, "a 1"u8.ToArray(), "text/plain", "br"), [415], "Content-Encoding"),
            ("multipart without profile", () => Post(name, formBody, "multipart/form-data; boundary=b0undary"), [415], "no part named 'profile'"),
            ("multipart cut short", () => Post(name, formBody[..(formBody.Length / 2)], "multipart/form-data; boundary=b0undary"), [400], "multipart"),
            ("multipart without boundary", () => Post(name, formBody, "multipart/form-data"), [400], "boundary"),
            ("pprof garbage", () => Post(name + "&format=pprof", Encoding.UTF8.GetBytes(new string('x', 1000))), [400], "profile (pprof)"),
            ("pprof truncated", () => Post(name + "&format=pprof", pprof[..(pprof.Length - 100)]), [400], "profile"),
            ("trie format", () => Post(name + "&format=trie", "x"u8.ToArray()), [400], "not supported"),
            ("jfr format", () => Post(name + "&format=jfr", "x"u8.ToArray()), [400], "not supported"),
            ("speedscope format", () => Post(name + "&format=speedscope", "{}"u8.ToArray()), [400], "not supported"),
            ("tree content type", () => Post(name, "x"u8.ToArray(), "binary/octet-stream+tree"), [400], "not supported"),
            ("folded without count", () => Post(name, "main;work\n"u8.ToArray(), "text/plain"), [400], "line 1"),
            ("folded negative", () => Post(name, "a 1\nmain;work -3\n"u8.ToArray(), "text/plain"), [400], "line 2"),
            ("folded overflow", () => Post(name, "a 18446744073709551615\nb 1\n"u8.ToArray(), "text/plain"), [400], "line 2"),
            ("UTF-16 without BOM", () => Post(name, Encoding.Unicode.GetBytes("a;b 1\n"), "text/plain"), [400], "UTF-16"),
            ("no name", () => Post("from=" + t, "a 1"u8.ToArray()), [400], "name"),
            ("huge label value", () => Post("name=victim.cpu%7Benv%3D" + new string('v', 5000) + "%7D", "a 1"u8.ToArray()), [400], "longer than"),
            ("too many labels", () => Post("name=victim.cpu%7B" + string.Join("%2C", Enumerable.Range(0, 40).Select(i => $"l{i}%3Dv")) + "%7D", "a 1"u8.ToArray()), [400], "more than 32 labels"),
            ("bad label name", () => Post("name=victim.cpu%7Bbad-name%3Dv%7D", "a 1"u8.ToArray()), [400], "label name"),
            ("invalid UTF-8 in name", () => Post("name=victim%FF%FE.cpu", "a 1"u8.ToArray()), [400], "not allowed"),
            ("control character in value", () => Post("name=victim.cpu%7Benv%3Da%01b%7D", "a 1"u8.ToArray()), [400], "control character"),
            ("negative from", () => Post("name=victim.cpu&from=-100", "a 1"u8.ToArray()), [400], "from"),
            ("huge from", () => Post("name=victim.cpu&from=99999999999999999999999", "a 1"u8.ToArray()), [400], "from"),
            ("from past storage's range (milliseconds as seconds?)", () => Post("name=victim.cpu&from=20000000000", "a 1"u8.ToArray()), [400], "year 2286"),
            ("until before from", () => Post("name=victim.cpu&from=2000&until=1000", "a 1"u8.ToArray()), [400], "before"),
            ("bad sampleRate", () => Post(name + "&sampleRate=1e9", "a 1"u8.ToArray()), [400], "sampleRate"),
            ("name twice", () => Post(name + "&name=x", "a 1"u8.ToArray()), [400], "given 2 times"),
            ("catastrophic regex", () => new HttpRequestMessage(HttpMethod.Get, "/render?query=" + Uri.EscapeDataString("victim.cpu{env=~\"(a+)+$\"}")), [200], ""),
            ("lookbehind regex", () => new HttpRequestMessage(HttpMethod.Get, "/render?query=" + Uri.EscapeDataString("victim.cpu{env=~\"(?<=a)b\"}")), [400], "invalid regular expression"),
            ("huge regex", () => new HttpRequestMessage(HttpMethod.Get, "/render?query=" + Uri.EscapeDataString("victim.cpu{env=~\"" + new string('a', 2000) + "\"}")), [400], "longer than"),
            ("bad selector", () => new HttpRequestMessage(HttpMethod.Get, "/render?query=" + Uri.EscapeDataString("victim.cpu{env=prod}")), [400], "at byte 15"),
            ("render without query", () => new HttpRequestMessage(HttpMethod.Get, "/render"), [400], "query"),
            ("render bad time", () => new HttpRequestMessage(HttpMethod.Get, "/render?query=victim.cpu&from=yesterday"), [400], "from"),
            ("render bad maxNodes", () => new HttpRequestMessage(HttpMethod.Get, "/render?query=victim.cpu&maxNodes=-1"), [400], "maxNodes"),
            ("render unknown format", () => new HttpRequestMessage(HttpMethod.Get, "/render?query=victim.cpu&format=html"), [400], "format"),
            ("top bad n", () => new HttpRequestMessage(HttpMethod.Get, "/api/top?query=victim.cpu&n=0"), [400], "n:"),
        };
        foreach (var (what, make, statuses, says) in cases)
        {
            using HttpRequestMessage request = make();
            using HttpResponseMessage response = await server.Client.SendAsync(request, TestContext.Current.CancellationToken);
            string body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            Assert.True(statuses.Contains((int)response.StatusCode), $"{what}: got {(int)response.StatusCode} {body}");
            Assert.True(body.Contains(says, StringComparison.Ordinal), $"{what}: reply does not say '{says}': {body}");
        }
        Assert.Equal(before, await State());
        var (_, metrics) = await Api.Get(server.Client, "/metrics");
        Assert.DoesNotContain("status=\"5", metrics);
    }

    [Fact]
    public async Task KestrelLimitsOnHeadersAndRequestLine()
    {
        await using var server = await InProcessServer.Start();
        var uri = new Uri(server.Url);
        async Task<string> Raw(string request)
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(uri.Host, uri.Port, TestContext.Current.CancellationToken);
            using NetworkStream stream = tcp.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes(request), TestContext.Current.CancellationToken);
            using var reader = new StreamReader(stream);
            return await reader.ReadLineAsync(TestContext.Current.CancellationToken) ?? "";
        }
        Assert.Contains(" 414 ", await Raw($"GET /render?query={new string('a', 20_000)} HTTP/1.1\r\nHost: x\r\n\r\n"));
        Assert.Contains(" 431 ", await Raw($"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {new string('a', 40_000)}\r\n\r\n"));
        Assert.Contains(" 431 ", await Raw("GET /healthz HTTP/1.1\r\nHost: x\r\n" + string.Concat(Enumerable.Range(0, 100).Select(i => $"X-{i}: v\r\n")) + "\r\n"));
        Assert.Contains(" 400 ", await Raw("GARBAGE\r\n\r\n"));
        Assert.Contains(" 200 ", await Raw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
}
