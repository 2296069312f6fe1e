using ProfileArena.Formats;

namespace ProfileArena.Cli.Commands;

/// <summary><c>stats INPUT...</c>: size and shape of the tree.</summary>
internal sealed class StatsCommand(TextWriter? stdout = null, TextWriter? stderr = null) : ICommand
{
    private TextWriter Out => stdout ?? Console.Out;
    private TextWriter Err => stderr ?? Console.Error;

    public string Name => "stats";
    public string Summary => "nodes, symbols, max depth and native bytes of a profile";
    public bool Hidden => false;

    public string Usage => """
        usage: profilearena stats INPUT... [input options of 'convert']
        exit codes: 0 ok, 1 bad input (file:line on stderr), 2 usage
        """;

    public int Run(string[] args)
    {
        FormatArgs a = FormatArgs.Parse(args, "from lenient fractional two-counts allow-empty sample-type max-decompressed-bytes");
        if (a.Help)
        {
            Out.WriteLine(Usage);
            return ExitCodes.Ok;
        }
        return ProfileInputs.WithLoadedTree(a, Err, (store, tree) =>
        {
            var shape = new Shape(new StackDepthTracker());
            tree.Iterate(ref shape);
            Out.WriteLine($"nodes         {tree.NodeCount:N0} (root included)");
            Out.WriteLine($"leaves        {shape.LeavesAtEnd:N0}");
            Out.WriteLine($"stacks        {shape.WithSelf:N0} (nodes with self > 0)");
            Out.WriteLine($"symbols       {store.SymbolCount:N0} (distinct frame names, the empty name included)");
            Out.WriteLine($"max depth     {shape.MaxDepth:N0}");
            Out.WriteLine($"total         {tree.Total:N0}");
            Out.WriteLine($"native bytes  {store.NativeBytes:N0}");
            return ExitCodes.Ok;
        });
    }

    private struct Shape(StackDepthTracker tracker) : IStackVisitor
    {
        public int MaxDepth;
        public long WithSelf, Leaves;
        private int _previousDepth;

        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
        {
            int depth = tracker.Next(stack); // amortised O(1): counting ';' would be quadratic on deep stacks
            if (depth <= _previousDepth) Leaves++; // the previous node had no child
            _previousDepth = depth;
            if (depth > MaxDepth) MaxDepth = depth;
            if (self > 0) WithSelf++;
        }

        public readonly long LeavesAtEnd => Leaves + (_previousDepth > 0 ? 1 : 0);
    }
}
