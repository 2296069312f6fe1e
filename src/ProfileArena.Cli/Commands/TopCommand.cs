using ProfileArena.Formats;

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
        FormatArgs a = FormatArgs.Parse(args, "n from lenient fractional two-counts allow-empty sample-type max-decompressed-bytes");
        if (a.Help)
        {
            Out.WriteLine(Usage);
            return ExitCodes.Ok;
        }
        return ProfileInputs.WithLoadedTree(a, Err, (store, tree) =>
        {
            ulong all = tree.Total;
            Print("by self", FunctionTotals.Top(tree, a.Top, TopBy.Self), all, a.Top);
            Out.WriteLine();
            Print("by total", FunctionTotals.Top(tree, a.Top, TopBy.Total), all, a.Top);
            return ExitCodes.Ok;
        });
    }

    private void Print(string title, List<FunctionTotal> rows, ulong all, int n)
    {
        Out.WriteLine($"top {n} {title} (total {all:N0})");
        Out.WriteLine($"{"self",15} {"self%",7} {"total",15} {"total%",7}  function");
        foreach (var (name, self, total) in rows)
            Out.WriteLine($"{self,15:N0} {Percent(self, all),7} {total,15:N0} {Percent(total, all),7}  {(name.Length == 0 ? "(empty name)" : name)}");
    }

    private static string Percent(ulong part, ulong all) => all == 0 ? "-" : $"{100.0 * part / all:0.00}%";
}
