using System.IO.MemoryMappedFiles;
using ProfileArena.Native;
using ProfileArena.Snapshots;

namespace ProfileArena;

public sealed unsafe partial class TreeStore
{
    /// <summary>
    /// Writes the store to <paramref name="stream"/> as a snapshot (format in native-notes.md): every live
    /// tree's node slabs, the tree table, the symbol table and the name bytes, written as bulk copies of
    /// native memory with an XxHash64 checksum per section. Each tree is written under its read lock
    /// (a consistent state of that tree; inserts into it wait, other trees go on).
    /// </summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using StorePin pin = Pin();
        _mapped?.VerifyAll(pin.Root, _storeLock); // never re-seal unverified bytes with fresh checksums
        SnapshotWriter.Save(pin.Root, _storeLock, stream);
    }

    /// <summary>
    /// Saves to <paramref name="path"/> safely: writes a temporary file beside it, flushes it to disk,
    /// then renames it over <paramref name="path"/>, so a crash leaves either the old file or the new one,
    /// never a half-written file under the real name. Temporary files of earlier saves of the same
    /// path whose process died before the rename are removed first (see native-notes.md).
    /// </summary>
    public void SaveToFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        SnapshotTempFiles.RemoveStale(full);
        string temp = SnapshotTempFiles.PathFor(full);
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                Save(file);
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>
    /// Reads a snapshot written by <see cref="Save"/> into a new, writable store. Every section's
    /// checksum and every structural invariant is verified; on any problem nothing is returned and
    /// nothing stays allocated.
    /// </summary>
    /// <exception cref="InvalidDataException">The data is truncated, corrupt or inconsistent; the message names the byte offset.</exception>
    /// <exception cref="StoreLimitExceededException">The snapshot does not fit the caps of <paramref name="options"/>.</exception>
    public static TreeStore Load(Stream stream, TreeStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        options ??= new TreeStoreOptions();
        options.Validate();
        StoreRoot* root = SnapshotLoader.Load(stream, options);
        return new TreeStore(new StoreHandle(root));
    }

    /// <summary>Loads the snapshot file at <paramref name="path"/> (see <see cref="Load(Stream, TreeStoreOptions?)"/>).</summary>
    public static TreeStore LoadFile(string path, TreeStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        SnapshotTempFiles.RemoveStale(Path.GetFullPath(path));
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return Load(file, options);
    }

    /// <summary>
    /// Opens a snapshot file read-only by memory-mapping it: nodes, symbols and names are used in place,
    /// nothing is copied, so a store of any size is queryable at once. Headers, the index and the symbol
    /// sections are verified at open; each tree's node section (checksum and structure) the first time
    /// the tree is used, or at open with <paramref name="verifyAll"/>. Every write to the store throws
    /// <see cref="InvalidOperationException"/>. The file must not be modified while the store is open
    /// (<see cref="SaveToFile"/> replaces files by rename, which is safe).
    /// </summary>
    /// <exception cref="InvalidDataException">The file is truncated, corrupt or inconsistent.</exception>
    public static TreeStore OpenSnapshot(string path, bool verifyAll = false, TreeStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new TreeStoreOptions();
        options.Validate();
        SnapshotTempFiles.RemoveStale(Path.GetFullPath(path));
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long length = stream.Length;
        if (length < 3 * SnapshotFormat.BlockSize)
        {
            stream.Dispose();
            throw SnapshotFormat.Invalid(0, $"a snapshot is at least {3 * SnapshotFormat.BlockSize} bytes; this file has {length}");
        }
        MemoryMappedFile? file = null;
        MemoryMappedViewAccessor? view = null;
        MappedSnapshot? mapped = null;
        TreeStore store;
        try
        {
            var guard = new MappedFileGuard(stream.SafeFileHandle, Path.GetFullPath(path));
            file = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = file.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            mapped = new MappedSnapshot(file, view, p + view.PointerOffset, length, guard); // owns file and view from here
            StoreRoot* root = SnapshotMapper.Open(mapped, options);
            store = new TreeStore(new StoreHandle(root, afterRelease: mapped), mapped); // its handle unmaps after freeing
        }
        catch
        {
            if (mapped != null) mapped.Dispose();
            else
            {
                view?.Dispose();
                if (file != null) file.Dispose();
                else stream.Dispose();
            }
            throw;
        }
        if (verifyAll)
        {
            try
            {
                store.VerifySnapshot();
            }
            catch
            {
                store.Dispose();
                throw;
            }
        }
        return store;
    }

    /// <summary>For a store opened with <see cref="OpenSnapshot"/>: verifies every tree's node section now
    /// (checksum and structure) instead of on first use. Does nothing for other stores.</summary>
    /// <exception cref="InvalidDataException">A tree's section is corrupt.</exception>
    public void VerifySnapshot()
    {
        using StorePin pin = Pin();
        _mapped?.VerifyAll(pin.Root, _storeLock);
    }
}
