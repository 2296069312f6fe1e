using System.Net;

namespace ProfileArena.Tests.Server.Media;

/// <summary>The HTTP server on <c>Storage:Medium=AzureBlob</c> (Azurite): data lives in the container, not the data
/// directory, and a server whose shards another server took over answers 503 to ingest and stores nothing.</summary>
public class BlobServerTests(AzuriteFixture azurite)
{
    private const string Series = "blobapp.cpu{env=test}"; // the ingest name
    private const string Query = "blobapp.cpu{env=\"test\"}";

    private async Task<string[]> BlobArgs()
    {
        var container = await azurite.NewContainerAsync();
        return ["--Storage:Medium=AzureBlob", $"--Storage:BlobConnectionString={await azurite.ConnectionStringAsync()}", $"--Storage:BlobContainer={container.Name}"];
    }

    [Fact]
    public async Task Pushed_profiles_come_back_from_blobs_on_another_data_directory_and_a_fenced_server_answers_503()
    {
        string[] blob = await BlobArgs();
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var expected = new Dictionary<string, ulong>(StringComparer.Ordinal);
        await using (InProcessServer first = await InProcessServer.Start(blob))
        {
            for (int i = 0; i < 5; i++)
            {
                using HttpResponseMessage r = await Api.IngestFolded(first.Client, Series, $"main;work{i} {i + 1}\nmain;shared 2\n", now - 60, now - 50);
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                expected[$"main;work{i}"] = (ulong)(i + 1);
                expected["main;shared"] = expected.GetValueOrDefault("main;shared") + 2;
            }
            // A second server on the same container (another silo after the first was declared dead) takes the
            // shards over when it opens them, from its own, empty data directory.
            await using InProcessServer second = await InProcessServer.Start(blob);
            Assert.Equal(expected, await Api.Stacks(second.Client, Query));
            using (HttpResponseMessage stale = await Api.IngestFolded(first.Client, Series, "main;stale 1000\n", now - 40, now - 30))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, stale.StatusCode);
            }
            using (HttpResponseMessage fresh = await Api.IngestFolded(second.Client, Series, "main;fresh 7\n", now - 40, now - 30))
            {
                Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
            }
            expected["main;fresh"] = 7;
            Assert.Equal(expected, await Api.Stacks(second.Client, Query));
        }
        // Both stopped (the first one's stop snapshot is refused, the second's commits): a third server reads exactly
        // the acknowledged profiles, nothing of the refused one.
        await using InProcessServer third = await InProcessServer.Start(blob);
        Assert.Equal(expected, await Api.Stacks(third.Client, Query));
    }
}
