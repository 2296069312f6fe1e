using System.IO.Compression;
using System.Runtime.InteropServices;
using ProfileArena.Server.Buffers;
using ProfileArena.Server.Http;

namespace ProfileArena.Server.Ingest;

/// <summary>Inflates gzip in a stream with a cap on the output, so a gzip bomb costs at most the cap
/// (plus one 64 KiB buffer) before it is refused.</summary>
/// <remarks>The library's <c>ProfileArena.Formats.ProfileInputBuffer</c> (the CLI's and <c>PprofFormat.Read</c>'s
/// input) follows the same rule (never more than the cap plus one byte) with a different job: any stream, gzip or
/// not, into an exact-size array the caller keeps, errors as <c>ProfileFormatException</c> with a byte offset. This
/// one keeps the request path free of Large Object Heap allocations by writing into a <see cref="PooledBuffer"/>
/// (returned to the server's pool after the request), and tells a bomb (413) from corrupt data (400). One loop for
/// both would put a public bounded-copy type into the library only for the server, so each keeps its own.</remarks>
public static class BoundedGzip
{
    /// <summary>Decompresses <paramref name="compressed"/> (what: <paramref name="what"/>, for messages) into a
    /// pooled buffer the caller disposes (returned to the pool here when this throws).</summary>
    /// <exception cref="RequestException">413 past <paramref name="maxBytes"/>; 400 for corrupt data.</exception>
    public static PooledBuffer Decompress(ReadOnlyMemory<byte> compressed, long maxBytes, string what)
    {
        using Stream input = ReadOnlyStream(compressed);
        using var gzip = new GZipStream(input, CompressionMode.Decompress);
        var output = new PooledBuffer((int)Math.Min(maxBytes + 1, Math.Min(Array.MaxLength / 4, compressed.Length * 4L + 4096)));
        try
        {
            while (true)
            {
                // Never more than one byte past the cap: that byte proves the output too large.
                Span<byte> room = output.GetSpan(64 << 10);
                int n = gzip.Read(room[..(int)Math.Min(room.Length, maxBytes + 1 - output.Length)]);
                if (n == 0) break;
                if (output.Length + (long)n > maxBytes)
                    throw new RequestException(StatusCodes.Status413PayloadTooLarge,
                        $"{what}: decompresses to more than {maxBytes} bytes (Server:MaxDecompressedBytes)");
                output.Advance(n);
            }
            return output;
        }
        catch (InvalidDataException e)
        {
            long at = output.Length;
            output.Dispose();
            throw RequestException.BadRequest($"{what}: corrupt gzip data after {at} decompressed bytes: {e.Message}");
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    /// <summary>A read-only stream over <paramref name="bytes"/>, without copying when they live in an array.</summary>
    public static Stream ReadOnlyStream(ReadOnlyMemory<byte> bytes) =>
        MemoryMarshal.TryGetArray(bytes, out ArraySegment<byte> segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(bytes.ToArray(), writable: false);
}
