using System.Text;
using ProfileArena.Tests.Support;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Engine;

/// <summary>
/// <see cref="TreeMergeSession"/> against the plain reference model: many trees of one source store merged into
/// one destination, with names shared and not, trees written, created and removed in both stores between merges,
/// and refused merges in the middle (a refused merge must leave no stale name mapping behind).
/// </summary>
public class MergeSessionTests
{
    private sealed class Keys(ulong seed, int vocabulary, string prefix)
    {
        private SplitMix64 _rng = new(seed);

        /// <summary>A random key of 1–6 frames drawn from "s{0..vocabulary}" (shared by both stores) and
        /// "{prefix}{0..vocabulary}" (this side's own names), with values 0–49.</summary>
        public (byte[] Key, ulong Value) Next()
        {
            int depth = 1 + (int)_rng.NextBelow(6);
            var key = new StringBuilder();
            for (int d = 0; d < depth; d++)
            {
                if (d > 0) key.Append(';');
                key.Append(_rng.NextBelow(2) == 0 ? "s" : prefix).Append(_rng.NextBelow((ulong)vocabulary));
            }
            return (Encoding.Latin1.GetBytes(key.ToString()), _rng.NextBelow(50));
        }

        public ulong Below(int n) => _rng.NextBelow((ulong)n);
    }

    private static void AssertSame(ReferenceTree expected, ProfileTree actual)
    {
        List<VisitedNode> e = expected.Nodes(), a = TreeSnapshot.Of(actual);
        for (int i = 0; i < Math.Min(e.Count, a.Count); i++)
            if (e[i] != a[i]) Assert.Fail($"node {i} differs: expected {e[i]}, got {a[i]}");
        Assert.Equal(e.Count, a.Count);
        Assert.Equal(expected.Total, actual.Total);
    }

    [Theory]
    [InlineData(1UL, 50)]
    [InlineData(2UL, 3000)]   // names spread over several map pages
    [InlineData(3UL, 20000)]  // a source store much larger than each tree
    public void ManyTreesIntoOneMatchTheReferenceModel(ulong seed, int vocabulary)
    {
        using var sourceStore = new TreeStore();
        using var destinationStore = new TreeStore();
        var sourceKeys = new Keys(seed, vocabulary, "src");
        var destinationKeys = new Keys(seed + 100, vocabulary, "dst");
        var trees = new List<(ProfileTree Tree, ReferenceTree Model)>();
        for (int t = 0; t < 12; t++)
        {
            var model = new ReferenceTree();
            ProfileTree tree = sourceStore.CreateTree();
            for (int i = 0; i < 400; i++)
            {
                var (k, v) = sourceKeys.Next();
                tree.Insert(k, v);
                model.Insert(k, v);
            }
            trees.Add((tree, model));
        }
        ProfileTree destination = destinationStore.CreateTree();
        var expected = new ReferenceTree();
        for (int i = 0; i < 300; i++)
        {
            var (k, v) = destinationKeys.Next();
            destination.Insert(k, v);
            expected.Insert(k, v);
        }

        using TreeMergeSession session = destination.BeginMerge(sourceStore);
        for (int step = 0; step < 60; step++)
        {
            int pick = (int)sourceKeys.Below(trees.Count);
            var (tree, model) = trees[pick];
            switch (sourceKeys.Below(6))
            {
                case 0: // the source tree grows, with names the source store has never seen (new ids mid-session)
                    for (int i = 0; i < 50; i++)
                    {
                        var (k, v) = sourceKeys.Next();
                        byte[] fresh = [.. k, .. Encoding.Latin1.GetBytes($";late{step}_{i}")];
                        tree.Insert(fresh, v);
                        model.Insert(fresh, v);
                    }
                    break;
                case 1: // the destination gains names of its own between merges (its new ids must not collide)
                    for (int i = 0; i < 30; i++)
                    {
                        var (k, v) = destinationKeys.Next();
                        byte[] own = [.. k, .. Encoding.Latin1.GetBytes($";dlate{step}_{i}")];
                        destination.Insert(own, v);
                        expected.Insert(own, v);
                    }
                    break;
                case 2: // a tree removed from the source store: merging it throws and changes nothing
                    if (trees.Count > 3)
                    {
                        sourceStore.Remove(tree);
                        trees.RemoveAt(pick);
                        Assert.Throws<InvalidOperationException>(() => session.Merge(tree));
                        var replacement = new ReferenceTree();
                        ProfileTree created = sourceStore.CreateTree(); // may reuse the removed slot
                        for (int i = 0; i < 200; i++)
                        {
                            var (k, v) = sourceKeys.Next();
                            created.Insert(k, v);
                            replacement.Insert(k, v);
                        }
                        trees.Add((created, replacement));
                    }
                    break;
            }
            var (merged, mergedModel) = trees[(int)sourceKeys.Below(trees.Count)];
            session.Merge(merged);
            foreach (VisitedNode node in mergedModel.Nodes())
            {
                expected.Insert(Encoding.Latin1.GetBytes(node.Stack), node.Self); // every node: zero-valued paths exist too
            }
            AssertSame(expected, destination);
        }
        foreach (var (tree, model) in trees) AssertSame(model, tree); // sources are only read
        Assert.True(session.ScratchBytes > 0);
    }

    [Theory]
    [InlineData(true)]  // refused by MaxNodes: before any name is interned
    [InlineData(false)] // refused by MaxSymbolBytes: names interned, then rolled back
    public void ARefusedMergeLeavesNoStaleNameMapping(bool byNodes)
    {
        using var sourceStore = new TreeStore();
        using var destinationStore = new TreeStore(byNodes ? new TreeStoreOptions { MaxNodes = 20 } : new TreeStoreOptions { MaxSymbolBytes = 120 });
        ProfileTree big = sourceStore.CreateTree();
        big.Insert("a;b", 7); // an existing node: its self is added in pass 1 and must be taken back
        for (int i = 0; i < 30; i++) big.Insert($"a;newname{i}", 1);
        ProfileTree small = sourceStore.CreateTree();
        small.Insert("a;newname0;newname1", 5);
        ProfileTree destination = destinationStore.CreateTree();
        destination.Insert("a;b", 1);
        var expected = new ReferenceTree();
        expected.Insert("a;b"u8, 1);

        using TreeMergeSession session = destination.BeginMerge(sourceStore);
        List<VisitedNode> before = TreeSnapshot.Of(destination);
        long symbols = destinationStore.SymbolCount, nodes = destinationStore.NodeCount;
        var refused = Assert.Throws<StoreLimitExceededException>(() => session.Merge(big));
        Assert.Equal(byNodes ? StoreLimit.Nodes : StoreLimit.SymbolBytes, refused.Limit);
        Assert.Equal(before, TreeSnapshot.Of(destination));
        Assert.Equal(symbols, destinationStore.SymbolCount);
        Assert.Equal(nodes, destinationStore.NodeCount);

        // Other names now take the ids the refused merge had (or would have) given newname0 and newname1.
        destination.Insert("z;other0;other1", 2);
        expected.Insert("z;other0;other1"u8, 2);
        session.Merge(small);
        expected.Insert("a;newname0;newname1"u8, 5);
        AssertSame(expected, destination);
    }

    [Fact]
    public void AMergeRefusedForOverflowAddsNothing()
    {
        using var sourceStore = new TreeStore();
        using var destinationStore = new TreeStore();
        ProfileTree destination = destinationStore.CreateTree();
        destination.Insert("a;b", ulong.MaxValue - 10);
        ProfileTree fits = sourceStore.CreateTree();
        fits.Insert("a;b", 4);
        fits.Insert("a;c", 4);
        ProfileTree tooMuch = sourceStore.CreateTree();
        tooMuch.Insert("a;b", 11);
        using TreeMergeSession session = destination.BeginMerge(sourceStore);
        Assert.Throws<OverflowException>(() => session.Merge(tooMuch));
        session.Merge(fits);
        var expected = new ReferenceTree();
        expected.Insert("a;b"u8, ulong.MaxValue - 10);
        expected.Insert("a;b"u8, 4);
        expected.Insert("a;c"u8, 4);
        AssertSame(expected, destination);
    }

    [Fact]
    public void SameStoreSessionsMergeAndDoubleLikeMergeFrom()
    {
        using var store = new TreeStore();
        ProfileTree destination = store.CreateTree(), other = store.CreateTree();
        var expected = new ReferenceTree();
        destination.Insert("a;b", 3); expected.Insert("a;b"u8, 3);
        other.Insert("a;c;d", 2);
        using TreeMergeSession session = destination.BeginMerge(store);
        session.Merge(other); expected.Insert("a;c;d"u8, 2);
        session.Merge(destination); // into itself: every value doubles
        expected.Insert("a;b"u8, 3);
        expected.Insert("a;c;d"u8, 2);
        AssertSame(expected, destination);
    }

    [Fact]
    public void ASnapshotStoreCanBeTheSource()
    {
        string path = Path.Combine(Path.GetTempPath(), $"pa-session-{Guid.NewGuid():N}.snap");
        try
        {
            var models = new List<ReferenceTree>();
            using (var saved = new TreeStore())
            {
                var keys = new Keys(9, 500, "m");
                for (int t = 0; t < 4; t++)
                {
                    ProfileTree tree = saved.CreateTree();
                    var model = new ReferenceTree();
                    for (int i = 0; i < 300; i++)
                    {
                        var (k, v) = keys.Next();
                        tree.Insert(k, v);
                        model.Insert(k, v);
                    }
                    models.Add(model);
                }
                saved.SaveToFile(path);
            }
            using TreeStore mapped = TreeStore.OpenSnapshot(path);
            using var destinationStore = new TreeStore();
            ProfileTree destination = destinationStore.CreateTree();
            var expected = new ReferenceTree();
            using TreeMergeSession session = destination.BeginMerge(mapped);
            foreach (ProfileTree tree in mapped.GetTrees()) session.Merge(tree);
            foreach (ReferenceTree model in models)
            {
                foreach (VisitedNode node in model.Nodes())
                {
                    expected.Insert(Encoding.Latin1.GetBytes(node.Stack), node.Self); // every node: zero-valued paths exist too
                }
            }
            AssertSame(expected, destination);
            using TreeMergeSession intoMapped = mapped.GetTrees().First().BeginMerge(destinationStore);
            Assert.Throws<InvalidOperationException>(() => intoMapped.Merge(destination)); // a mapped store is read-only
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void MisuseIsRefusedClearly()
    {
        var sourceStore = new TreeStore();
        using var otherStore = new TreeStore();
        using var destinationStore = new TreeStore();
        ProfileTree destination = destinationStore.CreateTree();
        ProfileTree source = sourceStore.CreateTree();
        source.Insert("a", 1);
        ProfileTree foreign = otherStore.CreateTree();
        TreeMergeSession session = destination.BeginMerge(sourceStore);
        var wrongStore = Assert.Throws<ArgumentException>(() => session.Merge(foreign));
        Assert.Contains("another store", wrongStore.Message);
        Assert.Throws<InvalidOperationException>(() => session.Merge(default));
        session.Merge(source);
        Assert.Equal(1UL, destination.Total);
        sourceStore.Dispose();
        Assert.Throws<ObjectDisposedException>(() => session.Merge(source));
        Assert.Equal(1UL, destination.Total);
        session.Dispose();
        session.Dispose(); // idempotent
        Assert.Equal(0, session.ScratchBytes);
        Assert.Throws<ObjectDisposedException>(() => session.Merge(source));
        Assert.Throws<ObjectDisposedException>(() => destination.BeginMerge(sourceStore));
        Assert.Throws<InvalidOperationException>(() => default(ProfileTree).BeginMerge(otherStore));
    }
}
