namespace ProfileArena.Native;

/// <summary>
/// Owns a store's <see cref="StoreRoot"/>. SafeHandle gives the two guarantees the store relies on:
/// a store that is never disposed is still freed (critical finalizer), and <c>ReleaseHandle</c>
/// runs only after the last in-flight call that did <c>DangerousAddRef</c> has released, so
/// Dispose racing with Insert or Iterate never frees memory under them.
/// </summary>
/// <remarks>A store opened from a snapshot file passes the mapping as <c>afterRelease</c>: it is
/// disposed (unmapped) after the native memory that points into it is freed. The handle does not know
/// what it is (the mapped-snapshot state belongs to Snapshots, which depends on Native, not back).</remarks>
internal sealed unsafe class StoreHandle : System.Runtime.InteropServices.SafeHandle
{
    private IDisposable? _afterRelease;

    public StoreHandle(StoreRoot* root, IDisposable? afterRelease = null) : base(IntPtr.Zero, ownsHandle: true)
    {
        SetHandle((nint)root);
        _afterRelease = afterRelease;
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    public StoreRoot* Root => (StoreRoot*)handle;

    protected override bool ReleaseHandle()
    {
        StoreRoot.Destroy((StoreRoot*)handle);
        _afterRelease?.Dispose();
        _afterRelease = null;
        return true;
    }
}
