using System.Text;
using System.Text.RegularExpressions;
using ProfileArena.Server.Http;
using ProfileArena.Server.Ingest;
using ProfileArena.Server.Storage;

namespace ProfileArena.Server.Query;

/// <summary>A parsed query: the profile name (null when the query names none, e.g. <c>{env="prod"}</c>,
/// allowed only where a query filters label listings) and the label matchers.</summary>
public sealed record ParsedSelector(string? Name, IReadOnlyList<LabelMatcher> Matchers)
{
    /// <summary>The storage selector; only for a query that names a profile.</summary>
    public SeriesSelector ToSeriesSelector() =>
        new(Name ?? throw new InvalidOperationException("the query names no profile"), Matchers);

    /// <summary>True when <paramref name="key"/> has the name (if any) and satisfies every matcher.</summary>
    public bool Matches(SeriesKey key) => (Name is null || key.Name == Name) && Matchers.All(m => m.Matches(key));
}

/// <summary>
/// pyroscope's query syntax: <c>app.cpu{env="prod",region=~"eu-.*",pod!="x",host!~"a|b"}</c>. The name
/// uses the application-name characters plus <c>:</c>; it may also be given as a matcher
/// <c>__name__="app.cpu"</c>. Values are double-quoted (<c>\"</c>, <c>\\</c>, <c>\n</c>, <c>\t</c> escapes),
/// single-quoted or back-quoted, as in PromQL. Regular expressions are anchored and run by .NET's
/// non-backtracking engine, so no pattern can take exponential time. Errors name the byte offset.
/// </summary>
public static class SelectorParser
{
    /// <summary>Longest regular expression accepted, in characters.</summary>
    public const int MaxRegexLength = 1024;

    /// <summary>Parses <paramref name="text"/> (parameter <paramref name="parameter"/>); when
    /// <paramref name="requireName"/>, a query without a profile name is an error.</summary>
    /// <exception cref="RequestException">400 naming the parameter, the byte offset and what was expected.</exception>
    public static ParsedSelector Parse(string parameter, string? text, bool requireName, int maxLength)
    {
        if (string.IsNullOrWhiteSpace(text))
            throw RequestException.BadRequest($"{parameter}: is required (e.g. app.cpu{{env=\"prod\"}})");
        if (text.Length > maxLength)
            throw RequestException.BadRequest($"{parameter}: longer than {maxLength} characters");
        var p = new Cursor(parameter, text);
        p.SkipSpaces();
        string? name = null;
        int nameStart = p.Pos;
        while (!p.End && (IngestName.IsAppChar(p.Peek) || p.Peek == ':')) p.Pos++;
        if (p.Pos > nameStart) name = text[nameStart..p.Pos];
        p.SkipSpaces();
        var matchers = new List<LabelMatcher>();
        if (!p.End)
        {
            if (p.Peek != '{') throw p.Error(name is null ? "expected a profile name or '{'" : $"character '{p.Peek}' is not allowed in a profile name (A-Z a-z 0-9 _ . - / :); expected '{{' or the end");
            p.Pos++;
            p.SkipSpaces();
            while (!p.End && p.Peek != '}')
            {
                int labelStart = p.Pos;
                while (!p.End && IngestName.IsLabelChar(p.Peek)) p.Pos++;
                if (p.Pos == labelStart) throw p.Error("expected a label name");
                string label = text[labelStart..p.Pos];
                p.SkipSpaces();
                int opStart = p.Pos;
                MatchOp op = p.Take("=~") ? MatchOp.Regex : p.Take("!~") ? MatchOp.NotRegex : p.Take("!=") ? MatchOp.NotEqual : p.Take("=") ? MatchOp.Equal
                    : throw p.Error("expected one of = != =~ !~");
                p.SkipSpaces();
                int valueStart = p.Pos;
                string value = p.QuotedString();
                if (label == "__name__")
                {
                    if (op != MatchOp.Equal) throw new Cursor(parameter, text) { Pos = opStart }.Error("__name__ takes only '='");
                    if (name is not null && name != value) throw new Cursor(parameter, text) { Pos = valueStart }.Error($"__name__=\"{value}\" contradicts the profile name '{name}'");
                    name = value;
                }
                else
                {
                    matchers.Add(MakeMatcher(p, valueStart, label, op, value));
                }
                p.SkipSpaces();
                if (p.End) break;
                if (p.Peek == ',')
                {
                    p.Pos++;
                    p.SkipSpaces();
                }
                else if (p.Peek != '}') throw p.Error("expected ',' or '}'");
            }
            if (p.End) throw p.Error("missing '}'");
            p.Pos++;
            p.SkipSpaces();
            if (!p.End) throw p.Error("unexpected text after '}'");
        }
        if (name is null && requireName) throw new Cursor(parameter, text) { Pos = 0 }.Error("the query names no profile (e.g. app.cpu{...})");
        return new ParsedSelector(name, matchers);
    }

    private static LabelMatcher MakeMatcher(Cursor p, int valueStart, string label, MatchOp op, string value)
    {
        if (op is MatchOp.Regex or MatchOp.NotRegex)
        {
            if (value.Length > MaxRegexLength) throw new Cursor(p.Parameter, p.Text) { Pos = valueStart }.Error($"regular expression longer than {MaxRegexLength} characters");
            try
            {
                return new LabelMatcher(label, op, value);
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException or RegexParseException or OutOfMemoryException)
            {
                throw new Cursor(p.Parameter, p.Text) { Pos = valueStart }.Error($"invalid regular expression: {e.Message}");
            }
        }
        return new LabelMatcher(label, op, value);
    }

    private sealed class Cursor(string parameter, string text)
    {
        public string Parameter => parameter;
        public string Text => text;
        public int Pos { get; set; }
        public bool End => Pos >= text.Length;
        public char Peek => text[Pos];

        public void SkipSpaces()
        {
            while (!End && char.IsWhiteSpace(Peek)) Pos++;
        }

        public bool Take(string token)
        {
            if (string.CompareOrdinal(text, Pos, token, 0, token.Length) != 0) return false;
            Pos += token.Length;
            return true;
        }

        public string QuotedString()
        {
            if (End || Peek is not ('"' or '\'' or '`')) throw Error("expected a quoted value (\"…\")");
            char quote = Peek;
            Pos++;
            var value = new StringBuilder();
            while (true)
            {
                if (End) throw Error("unterminated string");
                char c = Peek;
                Pos++;
                if (c == quote) return value.ToString();
                if (c == '\\' && quote != '`')
                {
                    if (End) throw Error("unterminated string");
                    char e = Peek;
                    Pos++;
                    value.Append(e switch
                    {
                        'n' => '\n',
                        't' => '\t',
                        '\\' or '"' or '\'' => e,
                        _ => throw Error($"unknown escape '\\{e}'"),
                    });
                }
                else value.Append(c);
            }
        }

        public RequestException Error(string reason) => RequestException.BadRequest(
            $"{parameter}: {reason} at byte {Encoding.UTF8.GetByteCount(text.AsSpan(0, Math.Min(Pos, text.Length)))} of '{TimeParameter.Excerpt(text)}'");
    }
}
