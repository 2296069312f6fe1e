using System.CommandLine;
using System.Text;
using ProfileArena.Formats;

namespace ProfileArena.Cli.Commands;

/// <summary><c>top INPUT -n 20</c>: the functions with the most self and the most total.</summary>
/// <remarks>Per frame name: self is the sum over every node of that name; total is the sum of the totals
/// of the nodes of that name that have no ancestor of the same name, so recursion is not counted twice.</remarks>
internal static class TopCommand
{
    public static Command Create(CliIo io)
    {
        var inputs = new InputOptions();
        Option<int> top = CliOptions.PositiveInt("-n", "how many functions in each list", 20);
        var command = new Command("top", "the top functions by self and by total (recursion counted once).");
        inputs.AddTo(command);
        command.Options.Add(top);
        command.SetAction(r =>
        {
            int n = r.GetValue(top);
            return ProfileInputs.WithLoadedTree(inputs.Read(r), io.Err, (store, tree) =>
            {
                var visitor = new Aggregator(new Dictionary<string, (ulong Self, ulong Total)>(StringComparer.Ordinal), new OpenPath());
                tree.Iterate(ref visitor);
                ulong all = tree.Total;
                Print(io.Out, "by self", visitor.Functions.OrderByDescending(kv => kv.Value.Self).ThenBy(kv => kv.Key, StringComparer.Ordinal), all, n);
                io.Out.WriteLine();
                Print(io.Out, "by total", visitor.Functions.OrderByDescending(kv => kv.Value.Total).ThenBy(kv => kv.Key, StringComparer.Ordinal), all, n);
                return ExitCodes.Ok;
            });
        });
        return command;
    }

    private static void Print(TextWriter output, string title, IEnumerable<KeyValuePair<string, (ulong Self, ulong Total)>> rows, ulong all, int n)
    {
        output.WriteLine($"top {n} {title} (total {all:N0})");
        output.WriteLine($"{"self",15} {"self%",7} {"total",15} {"total%",7}  function");
        foreach (var (name, (self, total)) in rows.Take(n))
            output.WriteLine($"{self,15:N0} {Percent(self, all),7} {total,15:N0} {Percent(total, all),7}  {(name.Length == 0 ? "(empty name)" : name)}");
    }

    private static string Percent(ulong part, ulong all) => all == 0 ? "-" : $"{100.0 * part / all:0.00}%";

    /// <summary>The names on the current path, with how often each occurs, so that "is this name already an
    /// ancestor" costs O(1) instead of a scan of the path (quadratic on deep stacks).</summary>
    private sealed class OpenPath
    {
        public StackDepthTracker Depth { get; } = new();
        public List<string> Names { get; } = [];
        public Dictionary<string, int> Counts { get; } = new(StringComparer.Ordinal);

        public void TruncateTo(int length)
        {
            for (int i = Names.Count - 1; i >= length; i--)
            {
                string name = Names[i];
                if (--Counts[name] == 0) Counts.Remove(name);
                Names.RemoveAt(i);
            }
        }

        public void Push(string name)
        {
            Names.Add(name);
            Counts[name] = Counts.GetValueOrDefault(name) + 1;
        }
    }

    private readonly struct Aggregator(Dictionary<string, (ulong Self, ulong Total)> functions, OpenPath path) : IStackVisitor
    {
        public Dictionary<string, (ulong Self, ulong Total)> Functions => functions;

        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
        {
            int depth = path.Depth.Next(stack);
            path.TruncateTo(depth - 1);
            string name = Encoding.UTF8.GetString(stack[path.Depth.NameStart..]);
            bool recursive = path.Counts.ContainsKey(name);
            path.Push(name);
            var (s, t) = functions.GetValueOrDefault(name);
            functions[name] = (s + self, recursive ? t : t + total);
        }
    }
}
