using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace ProfileArena.Native;

/// <summary>
/// Owns a store's <see cref="StoreRoot"/>. SafeHandle gives the two guarantees the store relies on:
/// a store that is never disposed is still freed (critical finalizer), and <c>ReleaseHandle</c>
/// runs only after the last in-flight call that did <c>DangerousAddRef</c> has released, so
/// Dispose racing with Insert or Iterate never frees memory under them.
/// </summary>
/// <remarks>A store opened from a snapshot file also owns the mapping (two managed objects per store,
/// whatever the file holds): it is unmapped after the native memory that points into it is freed.</remarks>
internal sealed unsafe class StoreHandle : SafeHandle
{
    private MemoryMappedFile? _file;
    private MemoryMappedViewAccessor? _view;

    public StoreHandle(StoreRoot* root) : base(IntPtr.Zero, ownsHandle: true) => SetHandle((nint)root);

    public StoreHandle(StoreRoot* root, MemoryMappedFile file, MemoryMappedViewAccessor view, Snapshots.MappedFileGuard guard) : this(root)
    {
        _file = file;
        _view = view;
        Guard = guard;
    }

    /// <summary>For a mapped store: watches the file for changes under the mapping; null otherwise.</summary>
    public Snapshots.MappedFileGuard? Guard { get; }

    public override bool IsInvalid => handle == IntPtr.Zero;

    public StoreRoot* Root => (StoreRoot*)handle;

    protected override bool ReleaseHandle()
    {
        StoreRoot.Destroy((StoreRoot*)handle);
        ReleaseMapping(_file, _view);
        _file = null;
        _view = null;
        return true;
    }

    internal static void ReleaseMapping(MemoryMappedFile? file, MemoryMappedViewAccessor? view)
    {
        if (view != null)
        {
            try { view.SafeMemoryMappedViewHandle.ReleasePointer(); } catch (ObjectDisposedException) { }
            view.Dispose();
        }
        file?.Dispose();
    }
}
