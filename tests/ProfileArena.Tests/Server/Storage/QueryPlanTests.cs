using ProfileArena.Server.Storage;

namespace ProfileArena.Tests.Server.Storage;

/// <summary>
/// The query plan's timeline pieces against a plain model: each step decomposed on its own, a piece counted only
/// in the first step that reaches it (a set of every piece seen). The plan itself keeps only the last counted
/// piece; these random ranges, steps, level counts and retentions (expired fine levels served by coarse buckets
/// that span many steps) must give exactly the model's pieces.
/// </summary>
public sealed class QueryPlanTests
{
    [Fact]
    public void StepPiecesEqualTheModelOnRandomRangesAndRetentions()
    {
        var random = new Random(20261129);
        int coarseStandIns = 0;
        for (int round = 0; round < 3_000; round++)
        {
            int levels = random.Next(1, 7);
            // Non-decreasing retentions (the options' rule), some levels kept forever (0).
            var retention = new long[levels];
            long r = random.Next(0, 4) == 0 ? 0 : random.Next(1, 400);
            for (int l = 0; l < levels; l++)
            {
                if (r != 0) r += random.Next(0, 3) == 0 ? 0 : random.Next(0, 100_000);
                if (r != 0 && random.Next(0, 6) == 0) r = 0; // forever from here on
                retention[l] = r;
            }
            var options = new StorageOptions { Levels = levels, LevelRetentionSeconds = retention };
            long now = 1_700_000_000 + random.Next(0, 1_000_000);
            long from = now - random.Next(0, 400_000);
            long until = from + random.Next(0, 200_000);
            long step = random.Next(0, 3) == 0 ? 0 : random.Next(1, 5_000);

            var (planFrom, planStep, _, stepPieces) = ProfileStorage.PlanQuery(options, now, from, until, step);
            using var pooled = stepPieces;

            var (f, u) = BucketMath.Normalize(from, until);
            Assert.Equal(f, planFrom);
            long steps = (u - f + planStep - 1) / planStep;
            Assert.Equal(steps, stepPieces.Length);
            var seen = new HashSet<(int, long)>();
            for (int i = 0; i < steps; i++)
            {
                long s = f + i * planStep;
                List<(int Level, long Start)> all = BucketMath.Decompose(s, Math.Min(s + planStep, u), levels,
                    level => options.RetentionOf(level) == 0 ? long.MinValue : BucketMath.Floor(now - options.RetentionOf(level), level));
                List<(int, long)> expected = [.. all.Where(seen.Add)];
                if (expected.Count < all.Count) coarseStandIns++;
                Assert.True(expected.SequenceEqual(stepPieces[i].ToArray()),
                    $"round {round}, step {i} of {steps} (from {f}, step {planStep}, levels {levels}, retention [{string.Join(", ", retention)}], now {now}): " +
                    $"expected [{string.Join(", ", expected)}], plan has [{string.Join(", ", stepPieces[i].ToArray())}]");
            }
        }
        // The rounds must reach the case the shortcut is about: a coarse bucket met again in a later step.
        Assert.True(coarseStandIns > 100, $"only {coarseStandIns} steps met a bucket counted before");
    }
}
