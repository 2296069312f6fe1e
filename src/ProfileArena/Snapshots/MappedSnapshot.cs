using System.IO.MemoryMappedFiles;
using ProfileArena.Engine;
using ProfileArena.Native;

namespace ProfileArena.Snapshots;

/// <summary>
/// Everything a store opened with <see cref="TreeStore.OpenSnapshot"/> knows about its file: the mapping,
/// the symbol, run and name sections and each tree's node section (verified on first use), what has
/// been verified so far, and the guard that notices a file changed under the mapping. The native records
/// (<see cref="StoreRoot"/>, <see cref="TreeRecord"/>) hold none of it: Native does not depend on Snapshots.
/// </summary>
/// <remarks>
/// Held by the <see cref="TreeStore"/> (non-null exactly for a read-only, mapped store: that is the
/// read-only check of every write) and handed to the store's <see cref="StoreHandle"/> as the thing to
/// dispose after the native memory pointing into the mapping is freed. Verification runs under the
/// store lock, once per section; the flags are read without it (published with a release write after
/// the work they stand for).
/// </remarks>
internal sealed unsafe class MappedSnapshot : IDisposable
{
    private MemoryMappedFile? _file;
    private MemoryMappedViewAccessor? _view;
    private int _symbolsVerified;
    private MappedTree[] _trees = [];

    /// <summary>The node section of one tree slot, as the file's headers describe it.</summary>
    internal struct MappedTree
    {
        public long SectionOffset; // file offset of the payload (for error messages and re-hashing)
        public ulong SectionHash;  // expected XxHash64 of the payload
        public int Verified;       // 1 once the section passed its checksum and structure checks
    }

    /// <summary>Takes ownership of <paramref name="file"/> and <paramref name="view"/> (whose pointer was acquired at <paramref name="base"/>).</summary>
    public MappedSnapshot(MemoryMappedFile file, MemoryMappedViewAccessor view, byte* @base, long length, MappedFileGuard guard)
    {
        _file = file;
        _view = view;
        Base = @base;
        Length = length;
        Guard = guard;
    }

    /// <summary>Start of the mapping (the file's byte 0).</summary>
    public byte* Base { get; }

    /// <summary>Bytes mapped: the file's length at open.</summary>
    public long Length { get; }

    public MappedFileGuard Guard { get; }

    /// <summary>Symbol, chunk-run and name sections: verified together on first use of any name.</summary>
    public SectionHeader Symbols, Runs, Names;

    public bool SymbolsVerified => Volatile.Read(ref _symbolsVerified) != 0;

    /// <summary>Set once at open: the node section of every slot (zero for a free slot).</summary>
    public void SetTrees(MappedTree[] trees) => _trees = trees;

    public ref MappedTree Tree(uint id) => ref _trees[id];

    /// <summary>Throws if the file changed in a way that makes the mapping unusable (<see cref="MappedFileGuard"/>).</summary>
    public void CheckFile(StoreRoot* root, StoreLock storeLock) => Guard.Check(this, root, storeLock);

    /// <summary>The store's names, checked once before anything reads them.</summary>
    public void EnsureSymbolsVerified(StoreRoot* root, StoreLock storeLock)
    {
        CheckFile(root, storeLock);
        if (SymbolsVerified) return;
        using (storeLock.Enter())
        {
            if (_symbolsVerified != 0) return;
            SnapshotMapper.VerifySymbols(root, this);
            Volatile.Write(ref _symbolsVerified, 1);
        }
    }

    /// <summary>Before a read of tree <paramref name="id"/>: the file is unchanged, names and the tree's section verified.</summary>
    public void EnsureTreeVerified(StoreRoot* root, StoreLock storeLock, uint id, TreeRecord* tree)
    {
        CheckFile(root, storeLock); // a file changed under the mapping would fault or lie: refuse first
        if (Volatile.Read(ref _trees[id].Verified) != 0) return;
        EnsureSymbolsVerified(root, storeLock);
        using (storeLock.Enter())
        {
            ref MappedTree section = ref _trees[id];
            if (section.Verified != 0) return;
            SnapshotMapper.VerifyTree(root, tree, this, section);
            Volatile.Write(ref section.Verified, 1);
        }
    }

    /// <summary>Verifies names and every live tree now (<see cref="TreeStore.VerifySnapshot"/>).</summary>
    public void VerifyAll(StoreRoot* root, StoreLock storeLock)
    {
        CheckFile(root, storeLock);
        EnsureSymbolsVerified(root, storeLock);
        for (uint id = 0; id < root->SlotCount; id++)
            if (root->TryGetLive(id, out _)) EnsureTreeVerified(root, storeLock, id, root->Tree(id));
    }

    /// <summary>Unmaps the file. Called by the store's handle after the native memory is freed.</summary>
    public void Dispose()
    {
        if (_view != null)
        {
            try { _view.SafeMemoryMappedViewHandle.ReleasePointer(); } catch (ObjectDisposedException) { }
            _view.Dispose();
            _view = null;
        }
        _file?.Dispose();
        _file = null;
    }
}
