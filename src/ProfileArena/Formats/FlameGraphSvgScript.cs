namespace ProfileArena.Formats;

/// <summary>
/// The script embedded in every <see cref="FlameGraphSvg"/>, written for this project (the idea is FlameGraph's
/// and inferno's: the SVG carries its frames plus a small script, so it is explorable in any browser with no
/// server). Every frame is a <c>&lt;g class="f"&gt;</c> with <c>data-x</c> (its left edge in samples),
/// <c>data-w</c> (its total) and <c>data-d</c> (its depth, 0 for "all"); its name is its &lt;title&gt; up to the
/// last " (self: ". Without scripts the same frames render as a static picture.
/// </summary>
/// <remarks>
/// Click a frame: it and its ancestors span the width, its subtree is redrawn to that scale, every other
/// frame hides; "Reset zoom" (or a click on "all") restores. "Search" (or Ctrl+F, or "/") asks for a
/// regular expression, highlights the frames whose name matches and shows the matched share of all
/// samples, counting a match nested in another match once (the outer total already holds it). Every
/// operation is one pass over the frames: linear in the graph's size, like the writer.
/// Never contains "]]&gt;" (it is written inside a CDATA section).
/// </remarks>
internal static class FlameGraphSvgScript
{
    public const string Source = """
"use strict";
(function () {
  var NS = "http://www.w3.org/2000/svg";
  var svg = document.getElementById("pa-flamegraph");
  var pad = +svg.getAttribute("data-pad"), charWidth = +svg.getAttribute("data-char-width");
  var fullWidth = +svg.getAttribute("width") - 2 * pad;
  var details = document.getElementById("pa-details");
  var resetZoom = document.getElementById("pa-reset-zoom");
  var searchButton = document.getElementById("pa-search");
  var clearButton = document.getElementById("pa-clear");
  var matched = document.getElementById("pa-matched");

  var frames = Array.prototype.map.call(document.querySelectorAll("#pa-frames > g.f"), function (g) {
    var title = g.querySelector("title").textContent, cut = title.lastIndexOf(" (self: ");
    return {
      g: g, rect: g.querySelector("rect"), text: g.querySelector("text"), title: title,
      name: cut < 0 ? title : title.slice(0, cut),
      x: +g.getAttribute("data-x"), w: +g.getAttribute("data-w"), d: +g.getAttribute("data-d")
    };
  });
  var root = frames.filter(function (f) { return f.d === 0; })[0];
  var total = root ? root.w : 0;

  function clip(name, width) {
    var fit = Math.floor((width - 6) / charWidth);
    if (fit < 3) return "";
    if (name.length <= fit) return name;
    var keep = fit - 2, code = name.charCodeAt(keep - 1);
    if (code >= 0xD800 && code <= 0xDBFF) keep--; // never split a surrogate pair
    return name.slice(0, keep) + "..";
  }

  function place(f, x, width) {
    f.rect.setAttribute("x", x.toFixed(2));
    f.rect.setAttribute("width", width.toFixed(2));
    var label = clip(f.name, width);
    if (!f.text && label) {
      f.text = document.createElementNS(NS, "text");
      f.text.setAttribute("y", (+f.rect.getAttribute("y") + +f.rect.getAttribute("height") - 3.5).toFixed(1));
      f.g.appendChild(f.text);
    }
    if (f.text) {
      f.text.setAttribute("x", (x + 3).toFixed(2));
      f.text.textContent = label;
    }
  }

  // Shows the subtree of `target` at full width, its ancestors above it full width, hides the rest.
  function zoom(target) {
    var x0 = target.x, x1 = target.x + target.w, scale = target.w > 0 ? fullWidth / target.w : 0;
    frames.forEach(function (f) {
      var inside = f.d >= target.d && f.x >= x0 && f.x + f.w <= x1 && (f.w > 0 || f.x < x1);
      var above = f.d < target.d && f.x <= x0 && f.x + f.w >= x1;
      f.g.classList.toggle("hide", !inside && !above);
      f.g.classList.toggle("above", above);
      if (inside) place(f, pad + (f.x - x0) * scale, f.w * scale);
      else if (above) place(f, pad, fullWidth);
    });
    resetZoom.classList.toggle("hide", target === root);
  }

  function search(term) {
    var re;
    try {
      re = new RegExp(term);
    } catch (e) {
      matched.textContent = "Invalid regular expression: " + term;
      return;
    }
    var hits = [];
    frames.forEach(function (f) {
      var hit = f.d > 0 && re.test(f.name); // "all" is not a function
      f.g.classList.toggle("match", hit);
      if (hit) hits.push(f);
    });
    // Frames nest or are disjoint: in order of x (wider first at equal x), a hit that starts before the
    // end of the last counted one lies inside it and is already in its total.
    hits.sort(function (a, b) { return a.x - b.x || b.w - a.w; });
    var sum = 0, end = -1;
    hits.forEach(function (f) {
      if (f.x < end) return;
      sum += f.w;
      end = f.x + f.w;
    });
    var percent = total > 0 ? 100 * sum / total : 0;
    matched.textContent = "Matched: " + percent.toFixed(2) + "% (" + sum.toLocaleString("en-US") + " of " + total.toLocaleString("en-US") + ")";
    matched.setAttribute("data-percent", String(percent));
    clearButton.classList.remove("hide");
  }

  function clearSearch() {
    frames.forEach(function (f) { f.g.classList.remove("match"); });
    matched.textContent = "";
    matched.removeAttribute("data-percent");
    clearButton.classList.add("hide");
  }

  function askSearch() {
    var term = window.prompt("Search frames (regular expression):", "");
    if (term) search(term);
  }

  var byGroup = new Map(frames.map(function (f) { return [f.g, f]; }));
  function frameOf(event) {
    var g = event.target.closest ? event.target.closest("g.f") : null;
    return g ? byGroup.get(g) : null;
  }

  document.getElementById("pa-frames").addEventListener("click", function (e) {
    var f = frameOf(e);
    if (f) zoom(f);
  });
  document.getElementById("pa-frames").addEventListener("mouseover", function (e) {
    var f = frameOf(e);
    details.textContent = f ? f.title : "";
  });
  document.getElementById("pa-frames").addEventListener("mouseout", function () { details.textContent = ""; });
  resetZoom.addEventListener("click", function () { if (root) zoom(root); });
  searchButton.addEventListener("click", askSearch);
  clearButton.addEventListener("click", clearSearch);
  window.addEventListener("keydown", function (e) {
    if ((e.ctrlKey && (e.key === "f" || e.key === "F")) || e.key === "/") {
      e.preventDefault();
      askSearch();
    } else if (e.key === "Escape") {
      if (root) zoom(root);
      clearSearch();
    }
  });
  svg.classList.add("interactive");
})();
""";
}
