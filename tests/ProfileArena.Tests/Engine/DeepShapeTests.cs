using ProfileArena.Baseline;
using ProfileArena.Engine;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Engine;

/// <summary>Issue 14 item 8: Top on deep chains and wide fans, by work counted (never timed), and against the oracle.</summary>
public class DeepShapeTests
{
    private static long TopWork(ProfileTree tree, int n, TopBy by)
    {
        TopN.t_comparisons = 0;
        tree.Top(n, by);
        return TopN.t_comparisons;
    }

    private static (TreeStore Store, ProfileTree Tree) Chain(int depth)
    {
        var store = new TreeStore();
        var tree = store.CreateTree();
        tree.Insert(string.Join(';', Enumerable.Repeat("A", depth)), 1); // every node's total is 1: all tied
        return (store, tree);
    }

    private static (TreeStore Store, ProfileTree Tree) Fan(int width)
    {
        var store = new TreeStore();
        var tree = store.CreateTree();
        var rng = new Random(width);
        foreach (int i in Enumerable.Range(0, width).OrderBy(_ => rng.Next())) tree.Insert($"root;f{i}", 1);
        return (store, tree);
    }

    [Fact]
    public void TopOnADeepChainOrAWideFanDoesLinearithmicWork()
    {
        // Issue 14: Top(n, Total) on one 100,000-deep chain took 53 s (ties rebuilt both stacks per comparison).
        foreach (var make in new Func<int, (TreeStore, ProfileTree)>[] { Chain, Fan })
        {
            var (small, smallTree) = make(5_000);
            var (large, largeTree) = make(50_000);
            using (small)
            using (large)
            {
                foreach (TopBy by in new[] { TopBy.Total, TopBy.Self })
                foreach (int n in new[] { 1, 100 })
                {
                    long w1 = TopWork(smallTree, n, by), w10 = TopWork(largeTree, n, by);
                    // 10× the nodes: ≈ 10× (linear) to ≈ 12.5× (N log N) the work; quadratic would be 100×.
                    Assert.True(w10 <= 14 * w1 + 1000, $"{by} n={n}: {w1} → {w10} comparisons for 10× the nodes");
                    // Three sorts of at most N items at most: 3 · N · log2 N (a quadratic tie-break: N² / 2).
                    Assert.True(w10 <= 3L * 50_000 * 16, $"{by} n={n}: {w10} comparisons for 50,000 nodes");
                }
                Assert.Equal(3, largeTree.Top(3, TopBy.Total).Length);
            }
        }

        // The chain's answer: all totals tie at 1, so the shortest stacks come first.
        using var store = new TreeStore();
        var chain = store.CreateTree();
        chain.Insert(string.Join(';', Enumerable.Repeat("A", 100_000)), 1);
        Assert.Equal(["A", "A;A", "A;A;A"], chain.Top(3, TopBy.Total).Select(e => e.StackText));
        var deepest = chain.Top(1, TopBy.Self).Single();
        Assert.Equal(100_000 * 2 - 1, deepest.Stack.Length);
    }

    [Fact]
    public void TopBreaksTiesInOrdinalStackOrderWhateverTheNames()
    {
        // Names with bytes below ';' ('!', ' ', '\x01') make stack order differ from sibling-name order
        // ("a" < "a!" < "a;x"): the ranking must follow the stacks' bytes.
        byte[] alphabet = "a!b \u0001:<"u8.ToArray();
        var rng = new Random(1414);
        for (int round = 0; round < 60; round++)
        {
            using var store = new TreeStore();
            var tree = store.CreateTree();
            var baseline = new BaselineTree();
            int keys = rng.Next(1, 120);
            for (int i = 0; i < keys; i++)
            {
                int depth = rng.Next(1, 6);
                var key = new List<byte>();
                for (int d = 0; d < depth; d++)
                {
                    if (d > 0) key.Add((byte)';');
                    int len = rng.Next(0, 3);
                    for (int j = 0; j < len; j++) key.Add(alphabet[rng.Next(alphabet.Length)]);
                }
                ulong value = (ulong)rng.Next(0, 3);
                tree.Insert(key.ToArray(), value);
                baseline.Insert(key.ToArray(), value);
            }
            foreach (TopBy by in new[] { TopBy.Self, TopBy.Total })
            foreach (int n in new[] { 0, 1, 3, 10, 1000 })
            {
                var expected = Oracles.Top(baseline, n, by);
                var actual = tree.Top(n, by).Select(e => (TreeSnapshot.Latin1(e.Stack), e.Self, e.Total)).ToList();
                Assert.Equal(expected, actual);
            }
        }
    }
}
