using System.Text;

namespace ProfileArena.Cli.Commands;

/// <summary><c>top INPUT -n 20</c>: the functions with the most self and the most total.</summary>
/// <remarks>Per frame name: self is the sum over every node of that name; total is the sum of the totals
/// of the nodes of that name that have no ancestor of the same name, so recursion is not counted twice.</remarks>
internal sealed class TopCommand(TextWriter? stdout = null, TextWriter? stderr = null) : ICommand
{
    private TextWriter Out => stdout ?? Console.Out;
    private TextWriter Err => stderr ?? Console.Error;

    public string Name => "top";
    public string Summary => "the top functions by self and by total";
    public bool Hidden => false;

    public string Usage => """
        usage: profilearena top INPUT... [-n 20] [input options of 'convert']
        exit codes: 0 ok, 1 bad input (file:line on stderr), 2 usage
        """;

    public int Run(string[] args)
    {
        FormatArgs a = FormatArgs.Parse(args, "n from lenient fractional two-counts allow-empty sample-type");
        if (a.Help)
        {
            Out.WriteLine(Usage);
            return ExitCodes.Ok;
        }
        return ProfileInputs.WithLoadedTree(a, Err, (store, tree) =>
        {
            var visitor = new Aggregator(new Dictionary<string, (ulong Self, ulong Total)>(StringComparer.Ordinal), []);
            tree.Iterate(ref visitor);
            ulong all = tree.Total;
            Print("by self", visitor.Functions.OrderByDescending(kv => kv.Value.Self).ThenBy(kv => kv.Key, StringComparer.Ordinal), all, a.Top);
            Out.WriteLine();
            Print("by total", visitor.Functions.OrderByDescending(kv => kv.Value.Total).ThenBy(kv => kv.Key, StringComparer.Ordinal), all, a.Top);
            return ExitCodes.Ok;
        });
    }

    private void Print(string title, IEnumerable<KeyValuePair<string, (ulong Self, ulong Total)>> rows, ulong all, int n)
    {
        Out.WriteLine($"top {n} {title} (total {all:N0})");
        Out.WriteLine($"{"self",15} {"self%",7} {"total",15} {"total%",7}  function");
        foreach (var (name, (self, total)) in rows.Take(n))
            Out.WriteLine($"{self,15:N0} {Percent(self, all),7} {total,15:N0} {Percent(total, all),7}  {(name.Length == 0 ? "(empty name)" : name)}");
    }

    private static string Percent(ulong part, ulong all) => all == 0 ? "-" : $"{100.0 * part / all:0.00}%";

    private readonly struct Aggregator(Dictionary<string, (ulong Self, ulong Total)> functions, List<string> path) : IStackVisitor
    {
        public Dictionary<string, (ulong Self, ulong Total)> Functions => functions;

        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
        {
            int depth = stack.Count((byte)';') + 1;
            if (path.Count >= depth) path.RemoveRange(depth - 1, path.Count - depth + 1);
            string name = Encoding.UTF8.GetString(stack[(stack.LastIndexOf((byte)';') + 1)..]);
            bool recursive = path.Contains(name);
            path.Add(name);
            var (s, t) = functions.GetValueOrDefault(name);
            functions[name] = (s + self, recursive ? t : t + total);
        }
    }
}
