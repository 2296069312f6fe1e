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
        if (IsMapped) VerifySnapshot(); // never re-seal unverified bytes with fresh checksums
        using StorePin pin = Pin();
        StoreRoot* root = pin.Root;
        SnapshotWriter.Save(root, _storeLock, stream);
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
        bool acquired = false;
        try
        {
            var guard = new MappedFileGuard(stream.SafeFileHandle, Path.GetFullPath(path));
            file = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = file.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            acquired = true;
            p += view.PointerOffset;
            StoreRoot* root = SnapshotMapper.Open(p, length, options);
            var store = new TreeStore(new StoreHandle(root, file, view, guard));
            if (verifyAll) store.VerifySnapshot();
            return store;
        }
        catch
        {
            if (view != null && !acquired) view.Dispose();
            StoreHandle.ReleaseMapping(file, acquired ? view : null);
            if (file == null) stream.Dispose();
            throw;
        }
    }

    /// <summary>For a store opened with <see cref="OpenSnapshot"/>: verifies every tree's node section now
    /// (checksum and structure) instead of on first use. Does nothing for other stores.</summary>
    /// <exception cref="InvalidDataException">A tree's section is corrupt.</exception>
    public void VerifySnapshot()
    {
        using StorePin pin = Pin();
        StoreRoot* root = pin.Root;
        if (root->MapBase == null) return;
        CheckMappedFile(root);
        EnsureSymbolsVerified(root);
        for (uint id = 0; id < root->TreeCount; id++)
        {
            TreeRecord* tree = root->Trees[id];
            if (tree->Live != 0 && Volatile.Read(ref tree->Verified) == 0) VerifyMappedTree(root, tree);
        }
    }

    /// <summary>A mapped store's names, checked once before anything reads them (no-op for other stores).</summary>
    internal void EnsureSymbolsVerified(StoreRoot* root)
    {
        if (root->MapBase == null) return;
        CheckMappedFile(root);
        if (Volatile.Read(ref root->SymbolsVerified) != 0) return;
        using (_storeLock.Enter())
        {
            if (root->SymbolsVerified != 0) return;
            SnapshotMapper.VerifySymbols(root);
            Volatile.Write(ref root->SymbolsVerified, 1);
        }
    }

    /// <summary>A mapped store: throws if the file changed under the mapping (see <see cref="MappedFileGuard"/>).</summary>
    internal void CheckMappedFile(StoreRoot* root)
    {
        if (root->MapBase != null) _handle.Guard!.Check(root, _storeLock);
    }

    private bool IsMapped
    {
        get
        {
            using StorePin pin = Pin();
            StoreRoot* root = pin.Root;
            return root->MapBase != null;
        }
    }

    private void VerifyMappedTree(StoreRoot* root, TreeRecord* tree)
    {
        EnsureSymbolsVerified(root);
        using (_storeLock.Enter())
        {
            if (tree->Verified != 0) return;
            SnapshotMapper.VerifyTree(root, tree);
            Volatile.Write(ref tree->Verified, 1);
        }
    }
}
