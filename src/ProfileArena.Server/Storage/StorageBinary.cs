using System.Text;

namespace ProfileArena.Server.Storage;

/// <summary>
/// The field encodings the storage's own files share (WAL payloads, series index): a string is an
/// int32 byte length then its UTF-8 bytes; a count is an int32 checked against what the remaining input
/// could hold. Reads throw <see cref="InvalidDataException"/> (or <see cref="EndOfStreamException"/>) for
/// the caller to report with its file and offset.
/// </summary>
internal static class StorageBinary
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Writes <paramref name="s"/> as length + UTF-8 bytes.</summary>
    public static void WriteString(BinaryWriter w, string s)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(s);
        w.Write(bytes.Length);
        w.Write(bytes);
    }

    /// <summary>Reads a string written by <see cref="WriteString"/>; invalid UTF-8 is corruption.</summary>
    public static string ReadString(BinaryReader r)
    {
        int length = ReadCount(r, (int)Math.Min(int.MaxValue, r.BaseStream.Length - r.BaseStream.Position));
        byte[] bytes = r.ReadBytes(length);
        if (bytes.Length != length) throw new EndOfStreamException();
        return StrictUtf8.GetString(bytes);
    }

    /// <summary>Reads a non-negative int32 count no larger than <paramref name="max"/>.</summary>
    public static int ReadCount(BinaryReader r, int max)
    {
        int n = r.ReadInt32();
        if (n < 0 || n > max) throw new InvalidDataException($"count {n} out of range at byte {r.BaseStream.Position - 4}");
        return n;
    }
}
