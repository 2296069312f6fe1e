namespace ProfileArena.Formats;

/// <summary>
/// Thrown by an export when the tree holds something the output format cannot express (e.g. a frame name
/// with a newline in folded text). Exports check before writing, so nothing has been written when it is thrown.
/// </summary>
public sealed class ProfileExportException : InvalidOperationException
{
    /// <summary>Creates the exception with what cannot be expressed.</summary>
    public ProfileExportException(string message) : base(message)
    {
    }
}
