using ProfileArena.Native;

namespace ProfileArena.Tests.Native;

/// <summary>
/// EdgeIndex against a Dictionary of (parent, symbol) → child: random trees grown node by node (the index
/// doubling and re-chaining on the way), absent keys, a chain of keys that all hash to one bucket, and
/// RemoveNewest undoing the last Add.
/// </summary>
public unsafe class EdgeIndexTests
{
    /// <summary>A tree's nodes and edge index, grown the way TreeRecord grows them.</summary>
    private struct Tree
    {
        public NodeSlabs Nodes;
        public EdgeIndex Edges;

        public void Init(NativeAllocator* memory)
        {
            Nodes.EnsureCapacity(memory, 1);
            Edges.EnsureCapacity(memory, ref Nodes, 0, 1);
            *Nodes[NodeIndex.Root] = default;
            Nodes.Count = 1;
        }

        public NodeIndex Add(NativeAllocator* memory, NodeIndex parent, SymbolId symbol)
        {
            Nodes.EnsureCapacity(memory, Nodes.Count + 1UL);
            Edges.EnsureCapacity(memory, ref Nodes, Nodes.Count, Nodes.Count + 1UL);
            var index = new NodeIndex(Nodes.Count);
            Node* node = Nodes[index];
            *node = default;
            node->Parent = parent;
            node->Symbol = symbol;
            Edges.Add(ref Nodes, index);
            Nodes.Count++;
            return index;
        }

        public void Free(NativeAllocator* memory)
        {
            Nodes.Free(memory);
            Edges.Free(memory);
        }
    }

    /// <summary>The index's bucket of a key, as the notes define it (Fibonacci hashing, top bits).</summary>
    private static ulong Bucket(uint parent, uint symbol, uint buckets)
        => ((((ulong)parent << 32) | symbol) * 0x9E3779B97F4A7C15UL) >> (64 - System.Numerics.BitOperations.Log2(buckets));

    [Fact]
    public void RandomTreesFindEveryEdgeAndNoOtherAsTheIndexGrows()
    {
        for (int seed = 0; seed < 6; seed++)
        {
            var rng = new Random(seed);
            using var a = new TestAllocator();
            var tree = new Tree();
            tree.Init(a.Memory);
            var model = new Dictionary<(uint, uint), uint>();
            int nodes = seed % 2 == 0 ? 3000 : 20_000;
            uint symbols = (uint)(seed < 2 ? 4 : 1000); // few names: wide fan-outs of the same symbols under many parents
            while (tree.Nodes.Count < nodes)
            {
                uint parent = (uint)rng.NextInt64(tree.Nodes.Count);
                uint symbol = (uint)rng.NextInt64(symbols);
                if (model.ContainsKey((parent, symbol))) continue;
                NodeIndex child = tree.Add(a.Memory, new NodeIndex(parent), new SymbolId(symbol));
                model[(parent, symbol)] = child.Value;
                if (tree.Nodes.Count % 997 == 0) AssertMatches(ref tree, model, rng);
            }
            Assert.True(tree.Edges.BucketCount >= tree.Nodes.Count, "load stays at most 1");
            AssertMatches(ref tree, model, rng);
            tree.Free(a.Memory);
            Assert.Equal(0, a.Bytes);
        }
    }

    private static void AssertMatches(ref Tree tree, Dictionary<(uint, uint), uint> model, Random rng)
    {
        foreach (((uint parent, uint symbol), uint child) in model)
            Assert.Equal(child, tree.Edges.Find(ref tree.Nodes, new NodeIndex(parent), new SymbolId(symbol)).Value);
        for (int i = 0; i < 500; i++)
        {
            uint parent = (uint)rng.NextInt64(tree.Nodes.Count), symbol = (uint)rng.Next();
            if (!model.ContainsKey((parent, symbol)))
                Assert.True(tree.Edges.Find(ref tree.Nodes, new NodeIndex(parent), new SymbolId(symbol)).IsNone);
        }
    }

    [Fact]
    public void KeysThatShareABucketAreAllFoundAndRemoveNewestUndoesTheLastAdd()
    {
        using var a = new TestAllocator();
        var tree = new Tree();
        tree.Init(a.Memory);
        // 40 children of the root whose keys all land in bucket 5 of the 64-bucket table, plus absent ones.
        var colliding = new List<uint>();
        for (uint s = 1; colliding.Count < 50; s++)
            if (Bucket(0, s, 64) == 5) colliding.Add(s);
        var model = new Dictionary<(uint, uint), uint>();
        foreach (uint s in colliding.Take(40)) model[(0, s)] = tree.Add(a.Memory, NodeIndex.Root, new SymbolId(s)).Value;
        Assert.Equal(64u, tree.Edges.BucketCount); // still one chain of 40
        AssertMatches(ref tree, model, new Random(1));
        foreach (uint s in colliding.Skip(40))
            Assert.True(tree.Edges.Find(ref tree.Nodes, NodeIndex.Root, new SymbolId(s)).IsNone);

        // Undo the newest: it leaves the chain, the others stay.
        var newest = new NodeIndex(tree.Nodes.Count - 1);
        uint newestSymbol = tree.Nodes[newest]->Symbol.Value;
        tree.Edges.RemoveNewest(ref tree.Nodes, newest);
        tree.Nodes.Count--;
        model.Remove((0, newestSymbol));
        Assert.True(tree.Edges.Find(ref tree.Nodes, NodeIndex.Root, new SymbolId(newestSymbol)).IsNone);
        AssertMatches(ref tree, model, new Random(2));

        // Growing re-chains every node: all still found.
        for (uint s = 100_000; tree.Nodes.Count < 300; s++) model[(1, s)] = tree.Add(a.Memory, new NodeIndex(1), new SymbolId(s)).Value;
        Assert.True(tree.Edges.BucketCount >= 300);
        AssertMatches(ref tree, model, new Random(3));
        tree.Free(a.Memory);
        Assert.Equal(0, a.Bytes);
    }
}
