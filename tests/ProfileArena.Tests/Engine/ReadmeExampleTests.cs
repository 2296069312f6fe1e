using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Engine;

/// <summary>The README's "Embedding in a server" example, run as written (with real samples).</summary>
public class ReadmeExampleTests
{
    private static IEnumerable<(string, ulong)> ReadSamples() => FoldedLines.Read(SharedData.Files("collapsed").First());

    [Fact]
    public void ServerExampleRuns()
    {
        string dir = Directory.CreateTempSubdirectory("pa-readme").FullName;
        string file = Path.Combine(dir, "profiles.snap");
        try
        {
            using var store = new TreeStore(new TreeStoreOptions { MaxNativeBytes = 8L << 30 });
            ProfileTree live = store.CreateTree();
            var ingest = new Thread(() =>
            {
                foreach (var (stack, count) in ReadSamples()) live.Insert(stack, count);
            });
            ingest.Start();
            foreach (TopEntry e in live.Top(10, TopBy.Self)) _ = e.ToString();
            live.Iterate((stack, self, total) => { });
            ingest.Join();

            ProfileTree hour = store.CreateTree();
            hour.MergeFrom(live);
            ProfileTree ui = hour.Clone();
            ui.Truncate(maxNodes: 1024);
            ulong total = live.Total;
            store.Remove(live);

            store.SaveToFile(file);
            using var copy = TreeStore.LoadFile(file);
            using var view = TreeStore.OpenSnapshot(file);
            Assert.Equal(total, view.GetTree(hour.Id).Total);
            Assert.Equal(total, copy.GetTree(ui.Id).Total);
            Assert.Throws<InvalidOperationException>(() => live.Total);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
