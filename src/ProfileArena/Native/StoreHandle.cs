using System.Runtime.InteropServices;

namespace ProfileArena.Native;

/// <summary>
/// Owns a store's <see cref="StoreRoot"/>. SafeHandle gives the two guarantees the store relies on:
/// a store that is never disposed is still freed (critical finalizer), and <c>ReleaseHandle</c>
/// runs only after the last in-flight call that did <c>DangerousAddRef</c> has released, so
/// Dispose racing with Insert or Iterate never frees memory under them.
/// </summary>
internal sealed unsafe class StoreHandle : SafeHandle
{
    public StoreHandle(StoreRoot* root) : base(IntPtr.Zero, ownsHandle: true) => SetHandle((nint)root);

    public override bool IsInvalid => handle == IntPtr.Zero;

    public StoreRoot* Root => (StoreRoot*)handle;

    protected override bool ReleaseHandle()
    {
        StoreRoot.Destroy((StoreRoot*)handle);
        return true;
    }
}
