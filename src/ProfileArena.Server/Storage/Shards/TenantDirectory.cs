using System.IO.Hashing;
using System.Text;

namespace ProfileArena.Server.Storage.Shards;

/// <summary>
/// Maps an untrusted tenant name to a safe directory name under DataDir: <c>t-</c> followed by the name with
/// every byte outside [a-z0-9_-] written as <c>%XX</c> (so no '/', "..", upper/lower case clash or control
/// character reaches the file system); names that would pass 100 characters become <c>h-</c> + the XxHash64 of
/// the name. Each tenant directory also holds <c>tenant.name</c> (the UTF-8 name) to find it at startup.
/// </summary>
internal static class TenantDirectory
{
    public const string NameFile = "tenant.name";

    public static string For(string tenant)
    {
        var text = new StringBuilder("t-");
        foreach (byte b in Encoding.UTF8.GetBytes(tenant))
        {
            if (b is >= (byte)'a' and <= (byte)'z' or >= (byte)'0' and <= (byte)'9' or (byte)'_' or (byte)'-') text.Append((char)b);
            else text.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            if (text.Length > 100) return $"h-{XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(tenant)):x16}";
        }
        return text.ToString();
    }
}
