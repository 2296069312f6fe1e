namespace ProfileArena.Formats;

/// <summary>
/// Reads a whole binary input (gzip-compressed or not, detected by its magic bytes) into one array, within a
/// size limit checked before any buffer grows: the input is read in chunks whose sum never passes the limit,
/// then copied once into an array of the exact size. A gzip bomb therefore costs at most the limit (plus one
/// chunk), and a valid input twice its size at the one copy.
/// </summary>
/// <remarks>
/// The server's <c>ProfileArena.Server.Ingest.BoundedGzip</c> applies the same rule (never hold more than the
/// limit plus one byte) but is a separate mechanism on purpose: it inflates bytes already in memory, always gzip,
/// into a buffer rented from the server's pool and returned after the request, and answers 413 (too large) or 400
/// (corrupt) itself. This one reads any stream (a file, gzip or not, told by the magic bytes) into an array the
/// caller keeps, and reports a <see cref="ProfileFormatException"/> with the byte offset. Sharing the loop would
/// make the three-line limit rule public API of the library for the server's sake, and the library has no pool
/// to give the server's buffers back to.
/// </remarks>
internal static class ProfileInputBuffer
{
    private const int FirstChunk = 64 << 10, LargestChunk = 16 << 20;

    /// <summary>Reads <paramref name="input"/> to its end (decompressing gzip); the data is [0, length) of the result.</summary>
    /// <exception cref="ProfileFormatException">More than <paramref name="max"/> bytes, or corrupt gzip data.</exception>
    public static byte[] ReadAll(Stream input, long max, out int length, out bool gzipped)
    {
        byte[] magic = new byte[2];
        int n = input.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
        gzipped = PprofFormat.IsGzip(magic.AsSpan(0, n));
        var chunks = new List<(byte[] Bytes, int Filled)>();
        long total = 0;
        Stream? gzip = null;
        try
        {
            Stream source = input;
            if (gzipped) source = gzip = PprofFormat.Decompressing(magic, input); // the magic bytes go back in front
            else chunks.Add((magic, n));
            total = gzipped ? 0 : n;
            int chunkSize = FirstChunk;
            while (true)
            {
                // Never hold more than max + 1 bytes: the one byte past the limit proves the input too large.
                int size = (int)Math.Min(chunkSize, max + 1 - total);
                byte[] chunk = new byte[size];
                int filled = source.ReadAtLeast(chunk, size, throwOnEndOfStream: false);
                total += filled;
                if (total > max)
                    throw ProfileFormatException.AtOffset(max, $"the profile is larger than {max} bytes{(gzipped ? " decompressed" : "")} (PprofImportOptions.MaxBytes)");
                chunks.Add((chunk, filled));
                if (filled < size) break;
                chunkSize = Math.Min(chunkSize * 2, LargestChunk);
            }
        }
        catch (InvalidDataException e)
        {
            throw ProfileFormatException.AtOffset(total, $"corrupt gzip data: {e.Message}", e);
        }
        finally
        {
            gzip?.Dispose();
        }
        byte[] data = GC.AllocateUninitializedArray<byte>((int)total);
        int at = 0;
        foreach ((byte[] bytes, int filled) in chunks)
        {
            bytes.AsSpan(0, filled).CopyTo(data.AsSpan(at));
            at += filled;
        }
        length = (int)total;
        return data;
    }
}
