using System.Globalization;
using System.Text;

namespace ProfileArena.Formats;

/// <summary>Options of <see cref="FlameGraphSvg.Write(ProfileTree, Stream, FlameGraphSvgOptions?)"/>.</summary>
public sealed class FlameGraphSvgOptions
{
    /// <summary>Image width in pixels (default 1200).</summary>
    public int Width { get; init; } = 1200;

    /// <summary>Height of one frame in pixels (default 16).</summary>
    public int FrameHeight { get; init; } = 16;

    /// <summary>Frames narrower than this many pixels are left out, with their subtrees (default 0.1).</summary>
    public double MinWidth { get; init; } = 0.1;

    /// <summary>Title above the graph (default "Flame Graph").</summary>
    public string Title { get; init; } = "Flame Graph";

    /// <summary>What a count measures, shown in tooltips (default "samples").</summary>
    public string Units { get; init; } = "samples";
}

/// <summary>
/// Writes an SVG flame graph: the root ("all") at the bottom, each frame as wide as its total,
/// children left-aligned on their parent (self time is the gap to their right), siblings in tree order.
/// Names are clipped to the frame's width; every frame carries a &lt;title&gt; tooltip with its full
/// name, self, total and percentage of the whole. Colours are a warm palette keyed by the name's hash,
/// so the same function has the same colour everywhere and across runs.
/// </summary>
/// <remarks>
/// Opened in a browser the file is interactive with no server: click a frame to zoom into it (Reset zoom
/// restores), Search highlights the frames matching a regular expression and shows their share of all
/// samples, the hovered frame's details show below the graph. Where scripts do not run (an &lt;img&gt;, an
/// image viewer) it is the same static picture: every frame is a plain rect with its text. Each frame's
/// group carries <c>data-x</c> (left edge in samples), <c>data-w</c> (total) and <c>data-d</c> (depth), which
/// is all the script needs; one pass over the tree writes it, as before.
/// </remarks>
public static class FlameGraphSvg
{
    private const int Pad = 10, Header = 36, Footer = 26;
    private const double FontSize = 12, CharWidth = 7.0;

    /// <summary>Writes the tree's flame graph to <paramref name="output"/> (not closed).</summary>
    public static void Write(ProfileTree tree, Stream output, FlameGraphSvgOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        options ??= new FlameGraphSvgOptions();
        if (options.Width < 100) throw new ArgumentOutOfRangeException(nameof(options), "Width must be at least 100 pixels");
        ulong rootTotal = tree.Total;
        double scale = rootTotal == 0 ? 0 : (options.Width - 2.0 * Pad) / rootTotal;
        ulong minTotal = scale == 0 ? ulong.MaxValue : (ulong)Math.Ceiling(options.MinWidth / scale);

        var depth = new DepthVisitor(minTotal);
        tree.Iterate(ref depth);
        int levels = depth.Max + 1;
        int height = Header + levels * options.FrameHeight + Footer;

        using var writer = new PooledWriter(output);
        var sb = new StringBuilder(512);
        sb.Append(CultureInfo.InvariantCulture,
            $"<?xml version=\"1.0\" standalone=\"no\"?>\n<svg version=\"1.1\" id=\"pa-flamegraph\" width=\"{options.Width}\" height=\"{height}\" viewBox=\"0 0 {options.Width} {height}\" data-pad=\"{Pad}\" data-char-width=\"{CharWidth}\" xmlns=\"http://www.w3.org/2000/svg\">\n");
        // Controls show only once the script has run (it adds "interactive"): a static rendering has none.
        sb.Append("<style>text{font-family:Verdana,sans-serif;font-size:12px;fill:#000}rect{stroke:#fff;stroke-width:0.5}" +
            ".f{cursor:pointer}.f:hover rect{stroke:#000}.f.match rect{fill:rgb(230,0,230)}.f.above rect{opacity:0.6}.hide{display:none}" +
            ".ctl{display:none;cursor:pointer;fill:#336}.interactive .ctl{display:inline}.interactive .ctl.hide{display:none}.ctl:hover{text-decoration:underline}</style>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"0\" y=\"0\" width=\"{options.Width}\" height=\"{height}\" fill=\"#f8f8f8\" style=\"stroke:none\"/>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{options.Width / 2}\" y=\"22\" text-anchor=\"middle\" style=\"font-size:16px\">");
        AppendEscaped(sb, options.Title);
        sb.Append("</text>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text id=\"pa-reset-zoom\" class=\"ctl hide\" x=\"{Pad}\" y=\"22\">Reset zoom</text>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text id=\"pa-search\" class=\"ctl\" x=\"{options.Width - Pad}\" y=\"22\" text-anchor=\"end\">Search</text>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text id=\"pa-clear\" class=\"ctl hide\" x=\"{options.Width - Pad - 60}\" y=\"22\" text-anchor=\"end\">Clear</text>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text id=\"pa-details\" x=\"{Pad}\" y=\"{height - 8}\"> </text>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text id=\"pa-matched\" x=\"{options.Width - Pad}\" y=\"{height - 8}\" text-anchor=\"end\"> </text>\n");
        sb.Append("<g id=\"pa-frames\">\n");
        writer.Write(sb.ToString());

        var frames = new FrameWriter(writer, options, rootTotal, scale, minTotal, height);
        frames.Frame(0, 0, "all", 0, rootTotal);
        tree.Iterate(ref frames);
        writer.Write("</g>\n<script type=\"text/ecmascript\"><![CDATA[\n");
        writer.Write(FlameGraphSvgScript.Source);
        writer.Write("\n]]></script>\n</svg>\n");
        writer.Flush();
    }

    private struct DepthVisitor(ulong minTotal) : IStackVisitor
    {
        private readonly StackDepthTracker _tracker = new();

        public int Max { get; private set; }

        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
        {
            int depth = _tracker.Next(stack);
            if (total < minTotal) return;
            if (depth > Max) Max = depth;
        }
    }

    private struct FrameWriter(PooledWriter writer, FlameGraphSvgOptions options, ulong rootTotal, double scale, ulong minTotal, int height) : IStackVisitor
    {
        private readonly List<ulong> _cursor = [0];
        private readonly StringBuilder _sb = new(512);
        private readonly StackDepthTracker _tracker = new();

        public void Visit(ReadOnlySpan<byte> stack, ulong self, ulong total)
        {
            int depth = _tracker.Next(stack);
            while (_cursor.Count <= depth) _cursor.Add(0);
            ulong x = _cursor[depth - 1];
            _cursor[depth - 1] = x + total;
            _cursor[depth] = x;
            if (total < minTotal) return; // too narrow to see, and so is everything under it
            string name = Encoding.UTF8.GetString(stack[_tracker.NameStart..]);
            Frame(depth, x, name, self, total);
        }

        public void Frame(int depth, ulong x, string name, ulong self, ulong total)
        {
            double px = Pad + x * scale, width = total * scale;
            double y = height - Footer - (depth + 1) * options.FrameHeight;
            double percent = rootTotal == 0 ? 0 : 100.0 * total / rootTotal;
            StringBuilder sb = _sb.Clear();
            sb.Append(CultureInfo.InvariantCulture, $"<g class=\"f\" data-x=\"{x}\" data-w=\"{total}\" data-d=\"{depth}\"><title>");
            AppendEscaped(sb, name.Length == 0 ? "(empty name)" : name);
            sb.Append(CultureInfo.InvariantCulture, $" (self: {self:N0} {options.Units}, total: {total:N0} {options.Units}, {percent:0.##}%)</title>");
            sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"{px:0.##}\" y=\"{y:0.#}\" width=\"{width:0.##}\" height=\"{options.FrameHeight - 1}\" rx=\"2\" fill=\"{Colour(name)}\"/>");
            int fit = (int)((width - 6) / CharWidth);
            if (fit >= 3)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{px + 3:0.##}\" y=\"{y + options.FrameHeight - 4.5:0.#}\">");
                int keep = fit - 2;
                if (name.Length > fit && char.IsHighSurrogate(name[keep - 1])) keep--; // never split a surrogate pair
                AppendEscaped(sb, name.Length <= fit ? name : name[..keep] + "..");
                sb.Append("</text>");
            }
            sb.Append("</g>\n");
            writer.Write(sb.ToString());
        }
    }

    /// <summary>FlameGraph's "hot" palette, keyed by an FNV-1a hash of the name (stable across runs).</summary>
    private static string Colour(string name)
    {
        uint h = 2166136261;
        foreach (char c in name) h = (h ^ c) * 16777619;
        int r = 205 + (int)(h % 51), g = (int)((h >> 8) % 231), b = (int)((h >> 16) % 56);
        return $"rgb({r},{g},{b})";
    }

    private static void AppendEscaped(StringBuilder sb, string text)
    {
        foreach (char c in text)
        {
            switch (c)
            {
                case '&': sb.Append("&amp;"); break;
                case '<': sb.Append("&lt;"); break;
                case '>': sb.Append("&gt;"); break;
                case '"': sb.Append("&quot;"); break;
                default: sb.Append(c < ' ' || c is '\uFFFE' or '\uFFFF' ? '?' : c); break;
            }
        }
    }
}
