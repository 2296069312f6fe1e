using Microsoft.Win32.SafeHandles;
using ProfileArena.Engine;
using ProfileArena.Native;

namespace ProfileArena.Snapshots;

/// <summary>
/// Watches the file behind a store opened with <see cref="TreeStore.OpenSnapshot"/>. Ordinary tools
/// change files in place (truncate, <c>cp other.snap t.snap</c>, an editor's overwrite): a mapped page
/// past a truncated end faults the process (SIGBUS, fatal), changed bytes give silently wrong answers.
/// Before every call that reads the mapping the store compares the open file's size and modification
/// time with those it verified; on a change it re-hashes everything it has verified so far (symbols,
/// names, the trees in use): identical bytes (a <c>touch</c>) carry on, anything else — a shorter file
/// or a changed checksum — marks the store damaged, and every later call throws
/// <see cref="InvalidDataException"/> instead of reading the mapping.
/// </summary>
/// <remarks>
/// What stays possible: a change that lands between the check and the reads of one call (a truncation
/// during an Iterate can still fault), and a change that restores both size and modification time
/// (e.g. <c>cp -p</c> of a same-sized file) is not seen before the next verification of that section.
/// The file is opened with FileShare.Read, which on Unix takes a shared flock: cooperating writers
/// (.NET FileShare.None, flock users) are refused while it is mapped; cp, truncate and editors ignore
/// advisory locks. <see cref="TreeStore.SaveToFile"/> renames a new file over the path, which is safe.
/// </remarks>
internal sealed unsafe class MappedFileGuard(SafeFileHandle file, string path)
{
    private long _length = RandomAccess.GetLength(file);
    private DateTime _written = File.GetLastWriteTimeUtc(file);
    private volatile string? _damage;

    /// <summary>Throws if the file changed in a way that makes the mapping unusable (see the class remarks).</summary>
    public void Check(MappedSnapshot mapped, StoreRoot* root, StoreLock storeLock)
    {
        if (_damage != null) throw new InvalidDataException(_damage);
        if (RandomAccess.GetLength(file) == _length && File.GetLastWriteTimeUtc(file) == _written) return;
        using (storeLock.Enter())
        {
            if (_damage != null) throw new InvalidDataException(_damage);
            long length = RandomAccess.GetLength(file);
            DateTime written = File.GetLastWriteTimeUtc(file);
            if (length == _length && written == _written) return; // another call re-verified it
            if (length < mapped.Length)
                Damage($"the snapshot file {path} was truncated from {mapped.Length} to {length} bytes while it was mapped");
            string? changed = ChangedSection(mapped, root);
            if (changed != null) Damage($"the snapshot file {path} changed while it was mapped: {changed}");
            _length = length;
            _written = written;
        }
    }

    private void Damage(string what)
    {
        _damage = $"{what}. The store no longer reads it; dispose it and open the file again (write snapshots with TreeStore.SaveToFile, which replaces the file by rename).";
        throw new InvalidDataException(_damage);
    }

    /// <summary>Re-hashes every section verified so far; the first that differs, or null.</summary>
    private static string? ChangedSection(MappedSnapshot mapped, StoreRoot* root)
    {
        byte* file = mapped.Base;
        if (mapped.SymbolsVerified)
        {
            foreach (SectionHeader h in new[] { mapped.Symbols, mapped.Runs, mapped.Names })
                if (SnapshotMapper.Hash(file + h.PayloadOffset, h.Length) != h.PayloadHash)
                    return $"the {h.Kind} section at byte offset {h.Offset} no longer matches its checksum";
        }
        for (uint id = 0; id < root->SlotCount; id++)
        {
            ref MappedSnapshot.MappedTree section = ref mapped.Tree(id);
            if (!root->TryGetLive(id, out _) || section.Verified == 0) continue;
            if (SnapshotMapper.Hash(file + section.SectionOffset, (long)root->Tree(id)->Nodes.Count * SnapshotFormat.NodeSize) != section.SectionHash)
                return $"the node section of tree {id} at byte offset {section.SectionOffset} no longer matches its checksum";
        }
        return null;
    }
}
