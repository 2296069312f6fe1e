using ProfileArena.Server.Cluster;

namespace ProfileArena.Tests.Server.Cluster;

/// <summary>
/// The rebalancing rule (<c>RebalancePlan</c>) on random clusters, against a brute-force reading of its contract: only a
/// silo over the line moves; it moves to the silo holding the fewest bytes its largest shard that leaves that silo at or
/// under the line and its budget; every move lowers the sum of squares of the silos' bytes, so repeated checks by every
/// silo in any order stop, with no silo left over the line that still has a shard that would fit.
/// </summary>
public sealed class RebalancePlanTests
{
    [Fact]
    public void MovesFollowTheRuleAndStopOnRandomClusters()
    {
        int moved = 0, ended = 0;
        for (int seed = 0; seed < 400; seed++)
        {
            var random = new Random(seed);
            int silos = random.Next(2, 7);
            double ratio = new[] { 0, 0.1, 0.25, 1 }[random.Next(4)];
            long minBytes = new long[] { 0, 50, 500 }[random.Next(3)];
            var limits = Enumerable.Range(0, silos).Select(_ => random.Next(3) == 0 ? random.Next(2_000, 20_000) : 0L).ToArray();
            var held = Enumerable.Range(0, silos).Select(_ => new Dictionary<string, long>()).ToArray();
            int shard = 0;
            for (int s = 0; s < silos; s++)
            {
                // Heavy silos and heavy-tailed shard sizes, so that some shards never fit anywhere.
                int count = random.Next(0, s == 0 ? 25 : 8);
                for (int i = 0; i < count; i++) held[s][$"t/shard-{shard++}"] = random.Next(4) == 0 ? random.Next(1, 5_000) : random.Next(0, 400);
            }
            for (int step = 0; ; step++)
            {
                Assert.True(step < 10_000, $"seed {seed}: moves did not stop");
                bool any = false;
                foreach (int self in Enumerable.Range(0, silos).OrderBy(_ => random.Next()))
                {
                    List<(int Silo, long Bytes, long Limit)> figures = [.. Enumerable.Range(0, silos).Select(s => (s, held[s].Values.Sum(), limits[s]))];
                    var move = RebalancePlan.Choose(self, figures, held[self].Select(kv => (kv.Key, kv.Value)), ratio, minBytes);
                    Expect(seed, self, figures, held[self], ratio, minBytes, move);
                    if (move is null) continue;
                    double before = figures.Sum(f => (double)f.Bytes * f.Bytes);
                    held[self].Remove(move.Key);
                    held[move.Target][move.Key] = move.Bytes;
                    double after = Enumerable.Range(0, silos).Sum(s => (double)held[s].Values.Sum() * held[s].Values.Sum());
                    Assert.True(after < before, $"seed {seed}: moving {move.Key} ({move.Bytes}) from {self} to {move.Target} did not lower the sum of squares ({before} → {after})");
                    moved++;
                    any = true;
                }
                if (!any) break;
            }
            ended++;
        }
        Assert.Equal(400, ended);
        Assert.True(moved > 400, $"only {moved} moves over 400 random clusters: the cases are too easy");
    }

    /// <summary>What the rule says <paramref name="self"/> does, read off the figures by brute force.</summary>
    private static void Expect(int seed, int self, List<(int Silo, long Bytes, long Limit)> figures, Dictionary<string, long> shards, double ratio, long minBytes, RebalanceMove<int>? move)
    {
        double mean = figures.Average(f => (double)f.Bytes);
        double line = Math.Max(mean * (1 + ratio), mean + minBytes);
        long mine = figures[self].Bytes;
        long lightest = figures.Where(f => f.Silo != self).Min(f => f.Bytes);
        bool Fits(long bytes, (int Silo, long Bytes, long Limit) target) =>
            bytes > 0 && target.Bytes + bytes <= line && (target.Limit == 0 || target.Bytes + bytes <= target.Limit);
        if (mine <= line)
        {
            Assert.True(move is null, $"seed {seed}: silo {self} at {mine} is not over the line {line} but moves {move}");
            return;
        }
        // The lightest other silo; of several equally light, the first listed.
        var target = figures.First(f => f.Silo != self && f.Bytes == lightest);
        long best = shards.Values.Where(b => Fits(b, target)).DefaultIfEmpty(0).Max();
        if (best == 0)
        {
            Assert.True(move is null, $"seed {seed}: silo {self} has no shard that fits the lightest silo but moves {move}");
            return;
        }
        Assert.True(move is not null, $"seed {seed}: silo {self} at {mine} is over the line {line} with a shard of {best} that fits, yet does not move");
        Assert.Equal(target.Silo, move.Target);
        Assert.Equal(shards[move.Key], move.Bytes);
        Assert.Equal(best, move.Bytes);
        Assert.True(Fits(move.Bytes, figures[move.Target]));
    }

    [Fact]
    public void NoMoveWithOneSiloOrABalancedCluster()
    {
        Assert.Null(RebalancePlan.Choose("a", [("a", 1000, 0)], [("k", 1000)], 0, 0));
        Assert.Null(RebalancePlan.Choose("a", [("a", 1000, 0), ("b", 1000, 0)], [("k", 10)], 0, 0));
        // Over the ratio but not by the minimum bytes: no move.
        Assert.Null(RebalancePlan.Choose("a", [("a", 1500, 0), ("b", 500, 0)], [("k", 100)], 0.25, 1000));
        // Mean 1000, line 1250: b has room for 750, so the largest shard under that goes (not the one of 800).
        Assert.Equal(new RebalanceMove<string>("j", 600, "b"), RebalancePlan.Choose("a", [("a", 1500, 0), ("b", 500, 0)], [("k", 100), ("j", 600), ("i", 800)], 0.25, 0));
        // The target's budget: b may take 550 more only.
        Assert.Equal(new RebalanceMove<string>("k", 100, "b"), RebalancePlan.Choose("a", [("a", 1500, 0), ("b", 500, 1050)], [("k", 100), ("j", 600)], 0.25, 0));
    }
}
