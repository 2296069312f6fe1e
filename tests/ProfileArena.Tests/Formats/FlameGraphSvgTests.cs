using System.Xml.Linq;
using ProfileArena.Formats;
using ProfileArena.Tests.Support;

namespace ProfileArena.Tests.Formats;

public class FlameGraphSvgTests
{
    [Fact]
    public void WritesWellFormedSvgWithATooltipPerFrame()
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        tree.Insert("main;a <&> \"b\"", 75);
        tree.Insert("main;c", 25);
        tree.Insert("main;c;" + new string('x', 400), 20);
        var output = new MemoryStream();
        FlameGraphSvg.Write(tree, output);
        output.Position = 0;
        XDocument svg = XDocument.Load(output);
        XNamespace ns = "http://www.w3.org/2000/svg";
        var titles = svg.Descendants(ns + "title").Select(t => t.Value).ToList();
        Assert.Equal(5, titles.Count); // all + 4 frames
        Assert.Contains("all (self: 0 samples, total: 120 samples, 100%)", titles);
        Assert.Contains("a <&> \"b\" (self: 75 samples, total: 75 samples, 62.5%)", titles);
        var texts = svg.Descendants(ns + "text").Select(t => t.Value).ToList();
        Assert.Contains(texts, t => t.StartsWith("xxx", StringComparison.Ordinal) && t.EndsWith("..", StringComparison.Ordinal)); // clipped
        var widths = svg.Descendants(ns + "rect").Skip(1).Select(r => double.Parse(r.Attribute("width")!.Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(1180, widths[0], 1); // "all" spans the width
    }

    [Fact]
    public void RealFileRenders()
    {
        using var store = new TreeStore();
        ProfileTree tree = store.CreateTree();
        using (FileStream file = File.OpenRead(Path.Combine(SharedData.TestData, "collapsed/FlameGraph/perf-vertx-stacks-01-collapsed-all.txt")))
            FoldedFormat.Import(file, tree);
        var output = new MemoryStream();
        FlameGraphSvg.Write(tree, output, new FlameGraphSvgOptions { Title = "vert.x" });
        output.Position = 0;
        XDocument svg = XDocument.Load(output);
        Assert.True(svg.Descendants(XName.Get("g", "http://www.w3.org/2000/svg")).Count(g => (string?)g.Attribute("class") == "f") > 100); // one group per frame
    }
}
