using System.Text;
using ProfileArena.Native;

namespace ProfileArena.Tests.Native;

/// <summary>
/// SymbolTable against a Dictionary model: ids in insertion order, lookups, and the checkpoint rollback
/// of a batch refused half-way (MaxSymbolBytes), including batches that cross the table's doubling point.
/// After a rollback the table must be exactly as before the batch: count, name bytes, every lookup, the
/// next id handed out — and its native bytes, but for the directories the notes allow to stay grown.
/// </summary>
public unsafe class SymbolTableTests
{
    private static byte[] Name(Random rng, HashSet<string> used)
    {
        while (true)
        {
            int length = rng.Next(0, 4) == 0 ? rng.Next(1, 400) : rng.Next(1, 24);
            var chars = new char[length];
            for (int i = 0; i < length; i++) chars[i] = (char)rng.Next('a', 'a' + (rng.Next(3) == 0 ? 3 : 26)); // short alphabets: shared prefixes
            string s = new(chars);
            if (used.Add(s)) return Encoding.UTF8.GetBytes(s);
        }
    }

    private static void AssertMatches(ref SymbolTable table, List<byte[]> model, IEnumerable<byte[]> absent)
    {
        Assert.Equal((uint)model.Count, table.Count);
        Assert.Equal(model.Sum(n => (long)n.Length), table.NameBytes);
        for (int id = 0; id < model.Count; id++)
        {
            Assert.True(table.Name(new SymbolId((uint)id)).SequenceEqual(model[id]), $"name of id {id}");
            Assert.Equal((uint)id, table.Find(model[id], SymbolTable.Hash(model[id])).Value);
        }
        foreach (byte[] name in absent) Assert.True(table.Find(name, SymbolTable.Hash(name)).IsMissing);
    }

    [Fact]
    public void IdsAreHandedOutInOrderAndFoundAgainAcrossRehashes()
    {
        var rng = new Random(3);
        using var a = new TestAllocator();
        var table = new SymbolTable();
        table.Init(a.Memory);
        var model = new List<byte[]> { Array.Empty<byte>() };
        var used = new HashSet<string> { "" };
        for (int i = 0; i < 5000; i++)
        {
            byte[] name = rng.Next(4) == 0 ? model[rng.Next(model.Count)] : Name(rng, used);
            SymbolId id = table.FindOrAdd(a.Memory, name, long.MaxValue);
            int expected = model.FindIndex(n => n.AsSpan().SequenceEqual(name));
            if (expected < 0) { expected = model.Count; model.Add(name); }
            Assert.Equal((uint)expected, id.Value);
        }
        AssertMatches(ref table, model, [Encoding.UTF8.GetBytes("never;added")]);
        table.Free(a.Memory);
        Assert.Equal(0, a.Bytes);
    }

    [Fact]
    public void ARefusedBatchLeavesTheTableExactlyAsBefore()
    {
        // Sizes just below, at and past each doubling point (the table doubles before load 3/4 of 64, 128, …).
        int[] sizes = [1, 2, 40, 47, 48, 49, 95, 96, 97, 191, 192, 193, 383, 384, 700, 767, 768, 1535, 1536, 3000];
        var rng = new Random(21);
        foreach (int size in sizes)
        {
            for (int round = 0; round < 3; round++)
            {
                using var a = new TestAllocator();
                var table = new SymbolTable();
                table.Init(a.Memory);
                var model = new List<byte[]> { Array.Empty<byte>() };
                var used = new HashSet<string> { "" };
                while (model.Count < size)
                {
                    byte[] name = Name(rng, used);
                    table.FindOrAdd(a.Memory, name, long.MaxValue);
                    model.Add(name);
                }
                long bytes = a.Bytes;
                int entryDirectory = table.Entries.DirectoryCapacity;

                // A batch of new names (with repeats of old and new ones) refused at a random point by the byte cap.
                var batch = new List<byte[]>();
                for (int i = 0, n = rng.Next(1, 120); i < n; i++) batch.Add(Name(rng, used));
                int refusedAt = rng.Next(batch.Count);
                long cap = table.NameBytes + batch.Take(refusedAt).Sum(n => (long)n.Length) + batch[refusedAt].Length - 1;
                SymbolTable.Checkpoint cp = table.Save();
                Assert.Throws<StoreLimitExceededException>(() =>
                {
                    for (int i = 0; i < batch.Count; i++)
                    {
                        table.FindOrAdd(a.Memory, batch[i], cap);
                        if (i > 0 && rng.Next(3) == 0) table.FindOrAdd(a.Memory, batch[rng.Next(i)], cap);   // found, not added
                        if (rng.Next(3) == 0) table.FindOrAdd(a.Memory, model[rng.Next(model.Count)], cap);
                    }
                });
                table.Rollback(a.Memory, cp);

                AssertMatches(ref table, model, batch);
                // Bytes: entry slabs, name chunks and a doubled slot table are given back; the entry and
                // name directories may stay grown (lock-free readers may hold them: native-notes.md).
                if (table.Entries.DirectoryCapacity == entryDirectory) Assert.InRange(a.Bytes - bytes, 0, 4095);
                else Assert.InRange(a.Bytes - bytes, 0, 65535);

                // The table goes on as if the batch never happened: the same names get the next ids.
                foreach (byte[] name in batch)
                {
                    Assert.Equal((uint)model.Count, table.FindOrAdd(a.Memory, name, long.MaxValue).Value);
                    model.Add(name);
                }
                AssertMatches(ref table, model, []);
                table.Free(a.Memory);
                Assert.Equal(0, a.Bytes);
            }
        }
    }
}
