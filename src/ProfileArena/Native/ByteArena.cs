using System.Diagnostics;

namespace ProfileArena.Native;

/// <summary>
/// Bump allocator for frame-name bytes, in 64 KiB chunks that never move.
/// </summary>
/// <remarks>
/// A name is addressed by a 32-bit <em>position</em> in 8-byte units: byte position = position·8,
/// chunk = byte position ≫ 16, offset = byte position &amp; 0xFFFF. That spans 32 GiB of names with a
/// 4-byte field; names start 8-byte aligned (the take-home's 80-byte names waste nothing).
/// A name longer than a chunk gets a contiguous run of k chunks' bytes in one allocation: its
/// first directory slot points at the run, the k−1 slots after it stay null (no position ever
/// points into them), which is also how <see cref="Free"/> recovers each allocation's size.
/// </remarks>
internal unsafe struct ByteArena
{
    public const int ChunkShift = 16;
    public const int ChunkBytes = 1 << ChunkShift;
    /// <summary>Chunk indices addressable by a 32-bit position in 8-byte units (2^35 bytes).</summary>
    public const int MaxChunks = 1 << (35 - ChunkShift);

    private PointerDirectory _chunks;
    private int _chunkCount;   // chunk indices handed out, run continuations included
    private int _openChunk;    // chunk that small names are appended to; -1 = none
    private int _openUsed;     // bytes used in the open chunk (8-aligned)
    private long _highWater;   // byte position just past the last byte of any name: what a snapshot saves
    private bool _borrowed;    // chunks point into a mapped snapshot: never freed here

    public struct Checkpoint
    {
        public int ChunkCount, OpenChunk, OpenUsed;
        public long HighWater;
    }

    public void Init() => _openChunk = -1;

    public readonly Checkpoint Save() => new() { ChunkCount = _chunkCount, OpenChunk = _openChunk, OpenUsed = _openUsed, HighWater = _highWater };

    public byte* Resolve(uint position8)
    {
        ulong p = (ulong)position8 << 3;
        byte* chunk = (byte*)_chunks[(int)(p >> ChunkShift)];
        Debug.Assert(chunk != null, "position points into a run continuation");
        return chunk + (p & (ChunkBytes - 1));
    }

    /// <summary>Copies <paramref name="bytes"/> into the arena and returns its position. Throws before changing anything.</summary>
    public uint Append(NativeAllocator* memory, ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length == 0) return 0;
        int aligned = (bytes.Length + 7) & ~7;
        int chunk, offset;
        if (_openChunk >= 0 && _openUsed + bytes.Length <= ChunkBytes)
        {
            chunk = _openChunk;
            offset = _openUsed;
            _openUsed = Math.Min(ChunkBytes, offset + aligned);
        }
        else
        {
            int runChunks = (bytes.Length + ChunkBytes - 1) >> ChunkShift;
            if (_chunkCount + runChunks > MaxChunks)
                throw new StoreLimitExceededException(StoreLimit.SymbolBytes, (long)MaxChunks * ChunkBytes,
                    "the name arena's 32-bit position space (32 GiB of frame names) is full");
            _chunks.EnsureSlot(memory, _chunkCount + runChunks - 1);
            // Zeroed: alignment padding and unused tails are saved in snapshots, and must not leak old heap bytes.
            void* p = NativeAllocator.Alloc(memory, (nuint)runChunks * ChunkBytes, zeroed: true);
            chunk = _chunkCount;
            offset = 0;
            _chunks.Set(chunk, p);
            _chunkCount += runChunks;
            if (runChunks == 1)
            {
                _openChunk = chunk;
                _openUsed = Math.Min(ChunkBytes, aligned);
            }
        }
        byte* dst = (byte*)_chunks[chunk] + offset;
        bytes.CopyTo(new Span<byte>(dst, bytes.Length));
        _highWater = Math.Max(_highWater, ((long)chunk << ChunkShift) + offset + bytes.Length);
        return (uint)((((ulong)chunk << ChunkShift) + (ulong)offset) >> 3);
    }

    /// <summary>Forgets every name appended since <paramref name="cp"/> and frees the chunks they opened.</summary>
    public void Rollback(NativeAllocator* memory, Checkpoint cp)
    {
        FreeChunksFrom(memory, cp.ChunkCount);
        // No chunk before the batch means no published name resolves through the directory (empty
        // names never do): nobody can hold it, so the directory the batch created goes too.
        if (cp.ChunkCount == 0 && !_borrowed) _chunks.Free(memory);
        _chunkCount = cp.ChunkCount;
        _openChunk = cp.OpenChunk;
        _openUsed = cp.OpenUsed;
        _highWater = cp.HighWater;
    }

    public readonly int ChunkCount => _chunkCount;
    public readonly long HighWater => _highWater;

    /// <summary>Chunks in the run starting at <paramref name="chunk"/>, or 0 if it continues an earlier run.</summary>
    public int RunLength(int chunk)
    {
        if (_chunks[chunk] == null) return 0;
        int run = 1;
        while (chunk + run < _chunkCount && _chunks[chunk + run] == null) run++;
        return run;
    }

    public byte* ChunkPointer(int chunk) => (byte*)_chunks[chunk];

    /// <summary>Snapshot load: allocates the next run of <paramref name="runChunks"/> zeroed chunks and returns it.</summary>
    public byte* AppendRun(NativeAllocator* memory, int runChunks)
    {
        Debug.Assert(runChunks >= 1 && _chunkCount + runChunks <= MaxChunks);
        _chunks.EnsureSlot(memory, _chunkCount + runChunks - 1);
        var p = (byte*)NativeAllocator.Alloc(memory, (nuint)runChunks * ChunkBytes, zeroed: true);
        _chunks.Set(_chunkCount, p);
        _chunkCount += runChunks;
        return p;
    }

    /// <summary>Snapshot open: the arena reads names from <paramref name="bytes"/> (chunk c at c·64 KiB),
    /// memory it does not own; <paramref name="runs"/>[c] is 0 for a run continuation.</summary>
    public void Borrow(NativeAllocator* memory, byte* bytes, uint* runs, int chunkCount)
    {
        Debug.Assert(_chunkCount == 0);
        _borrowed = true;
        if (chunkCount > 0) _chunks.EnsureSlot(memory, chunkCount - 1);
        for (int c = 0; c < chunkCount; c++)
            _chunks.Set(c, runs[c] == 0 ? null : bytes + ((long)c << ChunkShift));
        _chunkCount = chunkCount;
    }

    /// <summary>After a load: the high-water mark, and no open chunk (the next name opens a fresh chunk).</summary>
    public void SetLoaded(long highWater)
    {
        _highWater = highWater;
        _openChunk = -1;
        _openUsed = 0;
    }

    public void Free(NativeAllocator* memory)
    {
        if (_borrowed) _chunkCount = 0;
        _borrowed = false;
        FreeChunksFrom(memory, 0);
        _chunks.Free(memory);
        _chunkCount = 0;
        _openChunk = -1;
        _openUsed = 0;
        _highWater = 0;
    }

    private void FreeChunksFrom(NativeAllocator* memory, int first)
    {
        int i = first;
        while (i < _chunkCount)
        {
            void* p = _chunks[i];
            int run = 1;
            while (i + run < _chunkCount && _chunks[i + run] == null) run++;
            NativeAllocator.Free(memory, p, (nuint)run * ChunkBytes);
            _chunks.Set(i, null);
            i += run;
        }
    }
}
