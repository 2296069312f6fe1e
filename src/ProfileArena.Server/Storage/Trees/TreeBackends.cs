namespace ProfileArena.Server.Storage.Trees;

/// <summary>Picks the tree backend named by <see cref="StorageOptions.Engine"/> (<c>--storage arena|baseline</c>).</summary>
internal static class TreeBackends
{
    public const string Arena = "arena";
    public const string Baseline = "baseline";

    /// <summary>An empty backend of the configured engine.</summary>
    public static ITreeBackend CreateEmpty(StorageOptions options) =>
        IsBaseline(options) ? BaselineTreeBackend.CreateEmpty() : ArenaTreeBackend.CreateEmpty();

    /// <summary>The trees of a snapshot file (same format for both engines), in the configured engine.</summary>
    /// <exception cref="InvalidDataException">The file is corrupt; the message names it and the byte offset.</exception>
    public static ITreeBackend LoadFile(StorageOptions options, string path) =>
        IsBaseline(options) ? BaselineTreeBackend.LoadFile(path) : ArenaTreeBackend.LoadFile(path);

    private static bool IsBaseline(StorageOptions options) => string.Equals(options.Engine, Baseline, StringComparison.OrdinalIgnoreCase);
}
