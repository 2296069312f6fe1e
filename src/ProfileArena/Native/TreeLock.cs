using System.Runtime.CompilerServices;

namespace ProfileArena.Native;

/// <summary>
/// A reader-writer spin lock that lives inside a tree's native record, so a store needs no managed
/// lock object per tree. Writers have preference: once one waits, new readers wait too, so a
/// stream of Iterate calls cannot starve ingest — except nested readers (a thread that already
/// holds a tree lock), which would otherwise close a cycle: its held lock may be what the waiting
/// writer's other readers wait for (A's visitor reads B while B's visitor reads A, a writer waiting
/// on each). A nested reader waits only for a writer that holds the lock, and no writer holds a
/// tree lock while waiting for one that a reader holds (writes are refused inside visitors).
/// </summary>
/// <remarks>State: n ≥ 0 readers, or −1 for one writer. Spinning escalates through
/// <see cref="SpinWait"/> to yielding and sleeping, so a long Iterate costs a waiting writer
/// little CPU.</remarks>
internal struct TreeLock
{
    private int _state;
    private int _waitingWriters;
    private ulong _version;

    /// <summary>
    /// Bumped by every write section, so anything derived from the tree under a read lock (the
    /// cached <see cref="IterationPlan"/>) can tell whether it is still current. Stable while any
    /// read lock is held. 64 bits: at one write per nanosecond it would wrap after 584 years, so a
    /// plan can never match a later state by wrap-around (a 32-bit counter did after 2^32 writes).
    /// </summary>
    public readonly ulong Version => Volatile.Read(ref Unsafe.AsRef(in _version));

    /// <summary>Tests only: −1 while a writer holds the lock, else the number of readers; and writers waiting.</summary>
    internal readonly (int State, int WaitingWriters) StateForTests =>
        (Volatile.Read(ref Unsafe.AsRef(in _state)), Volatile.Read(ref Unsafe.AsRef(in _waitingWriters)));

    /// <summary>Tests only: puts the counter where billions of writes would have left it (held write lock or quiescent tree).</summary>
    internal void SetVersionForTests(ulong version) => Volatile.Write(ref _version, version);

    /// <param name="nested">The thread already holds a tree lock: do not yield to waiting writers.</param>
    public void EnterRead(bool nested)
    {
        var spin = new SpinWait();
        while (true)
        {
            int s = Volatile.Read(ref _state);
            if (s >= 0 && (nested || Volatile.Read(ref _waitingWriters) == 0) &&
                Interlocked.CompareExchange(ref _state, s + 1, s) == s)
                return;
            spin.SpinOnce();
        }
    }

    public void ExitRead() => Interlocked.Decrement(ref _state);

    public void EnterWrite()
    {
        if (Interlocked.CompareExchange(ref _state, -1, 0) == 0) return;
        Interlocked.Increment(ref _waitingWriters);
        var spin = new SpinWait();
        while (Interlocked.CompareExchange(ref _state, -1, 0) != 0)
            spin.SpinOnce();
        Interlocked.Decrement(ref _waitingWriters);
    }

    public void ExitWrite()
    {
        _version++; // published by the release write below
        Volatile.Write(ref _state, 0);
    }
}
