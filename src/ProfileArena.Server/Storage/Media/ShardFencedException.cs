namespace ProfileArena.Server.Storage.Media;

/// <summary>A shared medium refused a write because another process took the shard over (its lease was broken):
/// nothing was written, and this shard refuses every later write (HTTP 503, like any unavailable storage).</summary>
public sealed class ShardFencedException : StorageUnavailableException
{
    public ShardFencedException(string message, Exception? inner = null) : base(message, inner) { }
}
