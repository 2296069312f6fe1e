namespace ProfileArena.Benchmarks.Support;

/// <summary>Finds the repository root (the folder holding ProfileArena.sln) and ../shared/testdata beside it.</summary>
public static class RepoPaths
{
    public static string RepoRoot
    {
        get
        {
            foreach (string start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
            {
                for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
                    if (File.Exists(Path.Combine(dir.FullName, "ProfileArena.sln")))
                        return dir.FullName;
            }
            throw new InvalidOperationException($"ProfileArena.sln not found above {AppContext.BaseDirectory} or {Directory.GetCurrentDirectory()}");
        }
    }

    /// <summary>../shared/testdata/collapsed relative to the repository root. Missing data is an error, never a skip.</summary>
    public static string CollapsedDir
    {
        get
        {
            string dir = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "testdata", "collapsed"));
            if (!Directory.Exists(dir))
                throw new DirectoryNotFoundException($"shared test data missing: expected {dir} (the benchmarks read ../shared/testdata beside the repository)");
            return dir;
        }
    }
}
