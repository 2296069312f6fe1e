namespace ProfileArena.Cli.Commands;

/// <summary>One subcommand of the CLI. <see cref="Program"/> dispatches on <see cref="Name"/>.</summary>
internal interface ICommand
{
    string Name { get; }

    string Summary { get; }

    /// <summary>Internal commands (e.g. child-process workers) are not listed in the usage text.</summary>
    bool Hidden { get; }

    string Usage { get; }

    /// <summary>Runs with the arguments after the command name; returns the process exit code.
    /// Throws <see cref="UsageException"/> for bad options (exit code 2).</summary>
    int Run(string[] args);
}

internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 2;
}

/// <summary>Bad command-line input: the dispatcher prints the message and the command's usage, exit 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>Minimal "--name value" / "--name=value" / "--flag" option reader (no third-party CLI library).</summary>
internal sealed class OptionReader(string[] args)
{
    private int _index;

    /// <summary>Advances to the next option; false at the end. Rejects positional arguments.</summary>
    public bool Next(out string name, out string? inlineValue)
    {
        inlineValue = null;
        if (_index >= args.Length)
        {
            name = "";
            return false;
        }
        string arg = args[_index++];
        if (!arg.StartsWith("--", StringComparison.Ordinal) && arg != "-h")
            throw new UsageException($"unexpected argument '{arg}'");
        int eq = arg.IndexOf('=', StringComparison.Ordinal);
        if (eq >= 0)
        {
            inlineValue = arg[(eq + 1)..];
            arg = arg[..eq];
        }
        name = arg;
        return true;
    }

    public string Value(string name, string? inlineValue)
    {
        if (inlineValue is not null)
            return inlineValue;
        if (_index >= args.Length)
            throw new UsageException($"{name} needs a value");
        return args[_index++];
    }

    public int PositiveInt(string name, string? inlineValue)
    {
        string text = Value(name, inlineValue);
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int value) || value <= 0)
            throw new UsageException($"{name} needs a positive integer, got '{text}'");
        return value;
    }
}
