namespace ProfileArena.Tests.Support;

/// <summary>Finds ../shared/testdata beside the repository root. Missing data fails the test, never skips it.</summary>
public static class SharedData
{
    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir != null && !File.Exists(Path.Combine(dir.FullName, "ProfileArena.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException($"ProfileArena.sln not found above {AppContext.BaseDirectory}");
        }
    }

    public static string TestData
    {
        get
        {
            string path = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "testdata"));
            if (!Directory.Exists(path))
                throw new DirectoryNotFoundException($"shared test data missing: expected {path} (see ../shared/README.md)");
            return path;
        }
    }

    public static IEnumerable<string> Files(string subfolder)
    {
        string dir = Path.Combine(TestData, subfolder);
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"shared test data missing: {dir}");
        var files = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new FileNotFoundException($"no files under {dir}");
        return files;
    }

    /// <summary>Path relative to testdata, with '/' separators: stable test-case names.</summary>
    public static string Relative(string path) => Path.GetRelativePath(TestData, path).Replace('\\', '/');
}
