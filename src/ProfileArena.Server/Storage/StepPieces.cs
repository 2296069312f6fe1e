using System.Buffers;

namespace ProfileArena.Server.Storage;

/// <summary>
/// A query plan's timeline: the bucket pieces of each step, step after step in one pooled array. A day at pyroscope's
/// 10 s step is 8,640 steps; a list per step made ≈ 1 MB of garbage per 24 h render (about 40 MB/s under the load
/// test's render loop: most of the server's gen0 collections). Dispose it when the query is done.
/// </summary>
/// <remarks>Built once by <see cref="ProfileStorage.PlanQuery"/>, then only read (by every shard of the query, on one
/// thread at a time or concurrently: reads only). Not to be used after <see cref="Dispose"/>.</remarks>
internal sealed class StepPieces : IDisposable
{
    private (int Level, long Start)[] _pieces;
    private int[] _ends; // _ends[i]: the end of step i's pieces in _pieces (its start: _ends[i − 1], or 0)
    private int _count, _steps;

    /// <summary>An empty timeline of <paramref name="steps"/> steps, to be filled with <see cref="AddStep"/>, step after step.</summary>
    public StepPieces(int steps)
    {
        _pieces = ArrayPool<(int, long)>.Shared.Rent(Math.Max(16, steps));
        _ends = ArrayPool<int>.Shared.Rent(Math.Max(1, steps));
        Length = steps;
    }

    /// <summary>Steps in the timeline.</summary>
    public int Length { get; }

    /// <summary>The pieces of step <paramref name="step"/> (an ended step), in time order.</summary>
    public ReadOnlySpan<(int Level, long Start)> this[int step]
    {
        get
        {
            if ((uint)step >= (uint)_steps) throw new ArgumentOutOfRangeException(nameof(step));
            int start = step == 0 ? 0 : _ends[step - 1];
            return _pieces.AsSpan(start, _ends[step] - start);
        }
    }

    /// <summary>Adds the next step, with <paramref name="pieces"/> (in time order); at most <see cref="Length"/> steps.</summary>
    public void AddStep(ReadOnlySpan<(int Level, long Start)> pieces)
    {
        if (_steps == Length) throw new InvalidOperationException("every step of the timeline is filled");
        if (_count + pieces.Length > _pieces.Length)
        {
            var larger = ArrayPool<(int, long)>.Shared.Rent(Math.Max(_count + pieces.Length, _pieces.Length * 2));
            _pieces.AsSpan(0, _count).CopyTo(larger);
            ArrayPool<(int, long)>.Shared.Return(_pieces);
            _pieces = larger;
        }
        pieces.CopyTo(_pieces.AsSpan(_count));
        _count += pieces.Length;
        _ends[_steps++] = _count;
    }

    /// <summary>Gives the arrays back to the pool.</summary>
    public void Dispose()
    {
        if (_ends.Length == 0) return;
        ArrayPool<(int, long)>.Shared.Return(_pieces);
        ArrayPool<int>.Shared.Return(_ends);
        _pieces = [];
        _ends = [];
    }
}
