using System.IO.Compression;
using ProfileArena.Server.Http;

namespace ProfileArena.Server.Ingest;

/// <summary>Inflates gzip in a stream with a cap on the output, so a gzip bomb costs at most the cap
/// (plus one 64 KiB buffer) before it is refused.</summary>
public static class BoundedGzip
{
    /// <summary>True when <paramref name="data"/> starts with gzip's magic bytes 1F 8B.</summary>
    public static bool IsGzip(ReadOnlySpan<byte> data) => data.Length >= 2 && data[0] == 0x1F && data[1] == 0x8B;

    /// <summary>Decompresses <paramref name="compressed"/> (what: <paramref name="what"/>, for messages).</summary>
    /// <exception cref="RequestException">413 past <paramref name="maxBytes"/>; 400 for corrupt data.</exception>
    public static byte[] Decompress(ReadOnlyMemory<byte> compressed, long maxBytes, string what)
    {
        using var input = new MemoryStream(compressed.ToArray(), writable: false);
        using var gzip = new GZipStream(input, CompressionMode.Decompress);
        using var output = new MemoryStream();
        byte[] buffer = new byte[64 << 10];
        try
        {
            while (true)
            {
                int n = gzip.Read(buffer, 0, buffer.Length);
                if (n == 0) break;
                if (output.Length + n > maxBytes)
                    throw new RequestException(StatusCodes.Status413PayloadTooLarge,
                        $"{what}: decompresses to more than {maxBytes} bytes (Server:MaxDecompressedBytes)");
                output.Write(buffer, 0, n);
            }
        }
        catch (InvalidDataException e)
        {
            throw RequestException.BadRequest($"{what}: corrupt gzip data after {output.Length} decompressed bytes: {e.Message}");
        }
        return output.ToArray();
    }
}
