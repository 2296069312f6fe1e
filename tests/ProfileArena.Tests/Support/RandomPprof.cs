namespace ProfileArena.Tests.Support;

/// <summary>
/// Random profile.proto messages for property tests of the pprof paths: a few sample types, functions named from a
/// small alphabet (so stacks share frames and repeat), names with ';' and empty names (and a system name behind some),
/// locations of several inlined lines or of none, samples drawn from a pool of stacks and their prefixes (so repeated
/// stacks and stacks that are another's prefix are common), values 0 and large ones. With <c>broken</c>, now and then a
/// reference that does not resolve (a missing location, a missing function, a string index past the table) or a
/// negative value.
/// </summary>
public static class RandomPprof
{
    private static readonly string[] Names = ["main", "a", "b", "run;loop", "", "x::y", "net/http.(*conn).serve", "λ", ";", "deep.name.with.many.parts"];

    public static byte[] Build(Random rng, bool broken)
    {
        var b = new PprofBuilder();
        int types = rng.Next(1, 4);
        for (int t = 0; t < types; t++) b.SampleType(t == 0 ? "samples" : "cpu" + t, t == 0 ? "count" : "nanoseconds");
        int functions = rng.Next(1, 12);
        for (ulong f = 1; f <= (ulong)functions; f++)
        {
            long name = b.Str(Names[rng.Next(Names.Length)]);
            long system = rng.Next(3) == 0 ? b.Str("sys_" + Names[rng.Next(Names.Length)]) : 0;
            if (broken && rng.Next(40) == 0) name = 1000 + rng.Next(10); // past the string table
            b.Function(f, name, system);
        }
        int locations = rng.Next(1, 16);
        for (ulong l = 1; l <= (ulong)locations; l++)
        {
            var lines = new ulong[rng.Next(4) == 0 ? 0 : rng.Next(1, 4)];
            for (int i = 0; i < lines.Length; i++)
                lines[i] = broken && rng.Next(50) == 0 ? (ulong)functions + 7 : (ulong)rng.Next(0, functions + 1); // 0: no function
            b.Location(l, lines);
        }
        var pool = new List<ulong[]>();
        for (int i = 0; i < rng.Next(1, 12); i++)
        {
            var stack = new ulong[rng.Next(0, 9)];
            for (int j = 0; j < stack.Length; j++) stack[j] = (ulong)rng.Next(1, locations + 1);
            pool.Add(stack);
        }
        int samples = rng.Next(0, 60);
        for (int s = 0; s < samples; s++)
        {
            ulong[] stack = pool[rng.Next(pool.Count)];
            if (rng.Next(4) == 0) stack = stack[rng.Next(stack.Length + 1)..]; // a prefix (locations are leaf first)
            if (broken && rng.Next(60) == 0) stack = [.. stack, (ulong)locations + 3];
            var values = new long[types];
            for (int t = 0; t < types; t++)
            {
                values[t] = rng.Next(30) switch
                {
                    < 6 => 0,
                    6 => long.MaxValue - rng.Next(3), // two of these pass 2^64 − 1 in total
                    _ => rng.Next(1, 1000),
                };
                if (broken && rng.Next(80) == 0) values[t] = -rng.Next(1, 5);
            }
            b.Sample(stack, values);
        }
        return b.Build();
    }
}
