using System.Runtime.CompilerServices;

namespace ProfileArena.Tests;

/// <summary>Settings every server a test starts gets unless the test says otherwise (environment variables reach the
/// servers built in process and, inherited, the ones started as child processes; a command-line argument wins).</summary>
internal static class TestEnvironment
{
    /// <summary>No startup warm-up (<c>Server:WarmupSeconds</c>): it would spend seconds of CPU at every one of the
    /// suite's server starts beside the other tests. <c>StartupWarmupTests</c> turns it on where it is tested.</summary>
    [ModuleInitializer]
    internal static void NoWarmup() => Environment.SetEnvironmentVariable("Server__WarmupSeconds", "0");
}
