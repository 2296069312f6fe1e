using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using ProfileArena.Workloads;

namespace ProfileArena.Cli.Commands;

/// <summary>Option factories with this CLI's value rules and messages (invariant culture, digits only).</summary>
internal static class CliOptions
{
    public static bool TryPositive(string text, out int value) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value > 0;

    /// <summary>An option taking a positive integer, with a default.</summary>
    public static Option<int> PositiveInt(string name, string description, int defaultValue, params string[] aliases) => new(name, aliases)
    {
        Description = description,
        HelpName = "N",
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r => ParsePositive(r, name) ?? defaultValue,
    };

    /// <summary>An optional positive integer (null when not given).</summary>
    public static Option<int?> OptionalPositiveInt(string name, string description) => new(name)
    {
        Description = description,
        HelpName = "N",
        CustomParser = r => ParsePositive(r, name),
    };

    /// <summary>An option taking one of <paramref name="values"/>.</summary>
    public static Option<string> OneOf(string name, string description, string defaultValue, params string[] values)
    {
        var option = new Option<string>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
        option.AcceptOnlyFromAmong(values);
        return option;
    }

    /// <summary>The <c>--engine</c> of takehome and verify-gc: one of <see cref="WorkloadEngines.Compared"/> by name, or
    /// <c>both</c> (the default), which runs them all in order. An unknown name is a usage error listing the valid ones.</summary>
    /// <remarks>No DefaultValueFactory (help would print the list's type, not "both"): read it with <see cref="Engines"/>.</remarks>
    public static Option<IReadOnlyList<WorkloadEngine>> EngineChoice(string description)
    {
        const string All = "both";
        string[] valid = [.. WorkloadEngines.Compared.Select(WorkloadEngines.Name), All];
        return new Option<IReadOnlyList<WorkloadEngine>>("--engine")
        {
            Description = $"{description} (default {All})",
            HelpName = string.Join('|', valid),
            CustomParser = r =>
            {
                string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
                if (text == All) return WorkloadEngines.Compared;
                if (WorkloadEngines.TryParse(text, out WorkloadEngine engine, WorkloadEngines.Compared)) return [engine];
                r.AddError($"--engine: {WorkloadEngines.UnknownName(text, valid)}");
                return WorkloadEngines.Compared;
            },
        };
    }

    /// <summary>The engines an <see cref="EngineChoice"/> option selects (all compared ones when it is not given).</summary>
    public static IReadOnlyList<WorkloadEngine> Engines(ParseResult r, Option<IReadOnlyList<WorkloadEngine>> option) =>
        r.GetValue(option) ?? WorkloadEngines.Compared;

    /// <summary>A required <c>--engine</c> naming one of <see cref="WorkloadEngines.Compared"/>.</summary>
    public static Option<WorkloadEngine> OneEngine(string description)
    {
        string[] valid = [.. WorkloadEngines.Compared.Select(WorkloadEngines.Name)];
        return new Option<WorkloadEngine>("--engine")
        {
            Description = description,
            HelpName = string.Join('|', valid),
            Required = true,
            CustomParser = r =>
            {
                string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
                if (WorkloadEngines.TryParse(text, out WorkloadEngine engine, WorkloadEngines.Compared)) return engine;
                r.AddError($"--engine: {WorkloadEngines.UnknownName(text, valid)}");
                return default;
            },
        };
    }

    /// <summary>An option's value inside a command validator, which runs before defaults are filled in
    /// (GetValue gives default(T) there for an option not on the command line).</summary>
    public static T ValueInValidator<T>(CommandResult r, Option<T> option, T defaultValue) =>
        r.GetResult(option) is { Implicit: false } ? r.GetValue(option)! : defaultValue;

    private static int? ParsePositive(ArgumentResult r, string name)
    {
        string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
        if (TryPositive(text, out int value)) return value;
        r.AddError($"{name} needs a positive integer, got '{text}'");
        return null;
    }
}
