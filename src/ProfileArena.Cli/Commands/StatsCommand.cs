using System.CommandLine;
using ProfileArena.Formats;

namespace ProfileArena.Cli.Commands;

/// <summary><c>stats INPUT...</c>: size and shape of the tree.</summary>
internal static class StatsCommand
{
    public static Command Create(CliIo io)
    {
        var inputs = new InputOptions();
        var command = new Command("stats", "nodes, symbols, max depth and native bytes of a profile.");
        inputs.AddTo(command);
        command.SetAction(r => ProfileInputs.WithLoadedTree(inputs.Read(r), io.Err, (store, tree) =>
        {
            var shape = new Shape(new StackDepthTracker());
            tree.Iterate(ref shape);
            TextWriter o = io.Out;
            o.WriteLine($"nodes         {tree.NodeCount:N0} (root included)");
            o.WriteLine($"leaves        {shape.LeavesAtEnd:N0}");
            o.WriteLine($"stacks        {shape.WithSelf:N0} (nodes with self > 0)");
            o.WriteLine($"symbols       {store.SymbolCount:N0} (distinct frame names, the empty name included)");
            o.WriteLine($"max depth     {shape.MaxDepth:N0}");
            o.WriteLine($"total         {tree.Total:N0}");
            o.WriteLine($"native bytes  {store.NativeBytes:N0}");
            return ExitCodes.Ok;
        }));
        return command;
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
