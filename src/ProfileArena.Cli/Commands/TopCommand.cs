using System.CommandLine;
using ProfileArena.Formats;

namespace ProfileArena.Cli.Commands;

/// <summary><c>top INPUT -n 20</c>: the functions with the most self and the most total.</summary>
/// <remarks>Per frame name: self is the sum over every node of that name; total is the sum of the totals
/// of the nodes of that name that have no ancestor of the same name, so recursion is not counted twice
/// (<see cref="FunctionTotals"/>).</remarks>
internal static class TopCommand
{
    public static Command Create(CliIo io)
    {
        var inputs = new InputOptions();
        Option<int> top = CliOptions.PositiveInt("-n", "how many functions in each list", 20);
        var command = new Command("top", "the top functions by self and by total (recursion counted once)");
        inputs.AddTo(command);
        command.Options.Add(top);
        command.SetAction(r =>
        {
            int n = r.GetValue(top);
            return ProfileInputs.WithLoadedTree(inputs.Read(r), io.Err, (store, tree) =>
            {
                ulong all = tree.Total;
                Print(io.Out, "by self", FunctionTotals.Top(tree, n, TopBy.Self), all, n);
                io.Out.WriteLine();
                Print(io.Out, "by total", FunctionTotals.Top(tree, n, TopBy.Total), all, n);
                return ExitCodes.Ok;
            });
        });
        return command;
    }

    private static void Print(TextWriter output, string title, List<FunctionTotal> rows, ulong all, int n)
    {
        output.WriteLine($"top {n} {title} (total {all:N0})");
        output.WriteLine($"{"self",15} {"self%",7} {"total",15} {"total%",7}  function");
        foreach (var (name, self, total) in rows)
            output.WriteLine($"{self,15:N0} {Percent(self, all),7} {total,15:N0} {Percent(total, all),7}  {(name.Length == 0 ? "(empty name)" : name)}");
    }

    private static string Percent(ulong part, ulong all) => all == 0 ? "-" : $"{100.0 * part / all:0.00}%";
}
