using System.Buffers.Binary;
using System.IO.Hashing;
using ProfileArena.Snapshots;

namespace ProfileArena.Tests.Support;

/// <summary>Test-side helpers for snapshot bytes: re-sealing checksums after a mutation, so the
/// structural validation (not only the checksums) meets hostile data.</summary>
public static class SnapshotBytes
{
    public static byte[] Of(TreeStore store)
    {
        var ms = new MemoryStream();
        store.Save(ms);
        return ms.ToArray();
    }

    /// <summary>Recomputes every payload hash and header/trailer hash it can find, walking sections from offset 64.</summary>
    public static void Reseal(byte[] file)
    {
        const int B = SnapshotFormat.BlockSize;
        if (file.Length < B) return;
        SnapshotFormat.SealBlock(file.AsSpan(0, B));
        long at = B;
        while (at + B <= file.Length)
        {
            Span<byte> h = file.AsSpan((int)at, B);
            if (BinaryPrimitives.ReadUInt32LittleEndian(h) != SnapshotFormat.SectionMagic)
            {
                if (BinaryPrimitives.ReadUInt64LittleEndian(h) == SnapshotFormat.TrailerMagic) SnapshotFormat.SealBlock(h);
                return;
            }
            long length = BinaryPrimitives.ReadInt64LittleEndian(h[16..]);
            if (length >= 0 && at + B + length <= file.Length)
                BinaryPrimitives.WriteUInt64LittleEndian(h[24..], XxHash64.HashToUInt64(file.AsSpan((int)(at + B), (int)length)));
            SnapshotFormat.SealBlock(h);
            if (length < 0 || length > file.Length) return;
            at += B + length + SnapshotFormat.Pad(length);
        }
    }
}
