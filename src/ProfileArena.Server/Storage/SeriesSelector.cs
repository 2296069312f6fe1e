using System.Text.RegularExpressions;

namespace ProfileArena.Server.Storage;

/// <summary>How a <see cref="LabelMatcher"/> compares a label's value.</summary>
public enum MatchOp
{
    /// <summary><c>=</c>: equal.</summary>
    Equal,
    /// <summary><c>!=</c>: not equal (a missing label counts as the empty string).</summary>
    NotEqual,
    /// <summary><c>=~</c>: the whole value matches the regular expression.</summary>
    Regex,
    /// <summary><c>!~</c>: the whole value does not match the regular expression.</summary>
    NotRegex,
}

/// <summary>One condition of a <see cref="SeriesSelector"/> on one label (Prometheus semantics: a missing
/// label has the empty value; regular expressions are anchored at both ends).</summary>
public sealed class LabelMatcher
{
    private readonly Regex? _regex;

    /// <summary>Creates a matcher.</summary>
    /// <exception cref="ArgumentException">The regular expression does not parse.</exception>
    public LabelMatcher(string name, MatchOp op, string value)
    {
        Name = name;
        Op = op;
        Value = value;
        if (op is MatchOp.Regex or MatchOp.NotRegex)
        {
            // Anchored like Prometheus; a time limit keeps a hostile pattern from hanging a query.
            _regex = new Regex($"^(?:{value})$", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking, TimeSpan.FromMilliseconds(100));
        }
    }

    /// <summary>The label's name (<c>__name__</c> is the profile name).</summary>
    public string Name { get; }

    /// <summary>The comparison.</summary>
    public MatchOp Op { get; }

    /// <summary>The value or regular expression.</summary>
    public string Value { get; }

    /// <summary>True when <paramref name="key"/> satisfies this matcher.</summary>
    public bool Matches(SeriesKey key)
    {
        string actual = key.LabelValue(Name) ?? "";
        return Op switch
        {
            MatchOp.Equal => actual == Value,
            MatchOp.NotEqual => actual != Value,
            MatchOp.Regex => _regex!.IsMatch(actual),
            _ => !_regex!.IsMatch(actual),
        };
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name}{(Op switch { MatchOp.Equal => "=", MatchOp.NotEqual => "!=", MatchOp.Regex => "=~", _ => "!~" })}\"{Value}\"";
}

/// <summary>
/// Which series a query reads: a profile name (<c>app.cpu</c>) and label matchers, as written in
/// pyroscope's query language <c>app.cpu{env="prod",region=~"eu-.*"}</c>. Parsing lives with the HTTP
/// layer (<c>Query/SelectorParser</c>); storage only evaluates.
/// </summary>
public sealed class SeriesSelector(string name, IReadOnlyList<LabelMatcher> matchers)
{
    /// <summary>The profile name every matching series has.</summary>
    public string Name { get; } = name;

    /// <summary>Further conditions on labels, all of which must hold.</summary>
    public IReadOnlyList<LabelMatcher> Matchers { get; } = matchers;

    /// <summary>True when <paramref name="key"/> has this name and satisfies every matcher.</summary>
    public bool Matches(SeriesKey key)
    {
        if (key.Name != Name) return false;
        foreach (LabelMatcher m in Matchers)
        {
            if (!m.Matches(key)) return false;
        }
        return true;
    }
}
