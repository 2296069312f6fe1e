using System.Diagnostics;
using ProfileArena.Cli;
using ProfileArena.Workloads;

namespace ProfileArena.Tests.Workloads;

/// <summary>Engine names live in one place (<see cref="WorkloadEngines"/>): every name round-trips, an unknown one is
/// a clear error listing the valid ones, and the tools that take a name (the CLI, the verify-gc child) exit 2 with it.</summary>
public sealed class WorkloadEngineNameTests
{
    public static TheoryData<WorkloadEngine> Engines() => [.. WorkloadEngines.All];

    [Theory]
    [MemberData(nameof(Engines))]
    public void EveryNameRoundTrips(WorkloadEngine engine)
    {
        string name = WorkloadEngines.Name(engine);
        Assert.Equal(engine, WorkloadEngines.Parse(name));
        Assert.True(WorkloadEngines.TryParse(name, out WorkloadEngine parsed));
        Assert.Equal(engine, parsed);
        Assert.Matches("^[a-z][a-z-]*$", name); // one word on a command line, no quoting needed
    }

    [Fact]
    public void NamesAreDistinctAndCoverTheEnum()
    {
        Assert.Equal(Enum.GetValues<WorkloadEngine>(), WorkloadEngines.All);
        Assert.Equal(WorkloadEngines.All.Count, WorkloadEngines.All.Select(WorkloadEngines.Name).Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(["arena", "baseline"], WorkloadEngines.Compared.Select(WorkloadEngines.Name));
        Assert.Throws<ArgumentOutOfRangeException>(() => WorkloadEngines.Name((WorkloadEngine)42));
        Assert.Throws<ArgumentOutOfRangeException>(() => WorkloadEngines.Create((WorkloadEngine)42));
    }

    [Theory]
    [InlineData("java")]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("Arena")]     // names are exact: lower case
    [InlineData("arena ")]
    [InlineData("both")]      // the CLI's word for "all compared engines", not an engine
    public void AnUnknownNameIsAnErrorListingTheValidOnes(string? name)
    {
        Assert.False(WorkloadEngines.TryParse(name, out _));
        var e = Assert.Throws<FormatException>(() => WorkloadEngines.Parse(name));
        Assert.Equal($"unknown engine '{name}' (valid: arena, baseline, arena-leak-per-tree, arena-leak-per-node)", e.Message);
    }

    [Fact]
    public void ANameOutsideTheAllowedOnesIsRefusedWithThoseListed()
    {
        // The test-only leaky engines exist for the verify-gc child, not for the take-home comparison.
        var e = Assert.Throws<FormatException>(() => WorkloadEngines.Parse("arena-leak-per-tree", WorkloadEngines.Compared));
        Assert.Equal("unknown engine 'arena-leak-per-tree' (valid: arena, baseline)", e.Message);
        Assert.Equal(WorkloadEngine.Baseline, WorkloadEngines.Parse("baseline", WorkloadEngines.Compared));
    }

    [Theory]
    [InlineData("takehome", "java", "arena, baseline, both")]
    [InlineData("verify-gc", "Arena", "arena, baseline, both")]
    [InlineData("takehome-worker", "both", "arena, baseline")]
    [InlineData("takehome-worker", "arena-leak-per-node", "arena, baseline")]
    public void TheCliExitsTwoNamingTheValidEngines(string command, string engine, string valid)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(ExitCodes.Usage, CliApp.Run([command, "--engine", engine], output, error));
        Assert.Contains($"--engine: unknown engine '{engine}' (valid: {valid})", error.ToString(), StringComparison.Ordinal);
        Assert.Equal("", output.ToString());
    }

    [Fact]
    public async Task TheVerifyGcChildExitsTwoNamingTheValidEngines()
    {
        // The observed child parses by hand (no command-line package in the heap it measures), through the same names.
        string child = Path.Combine(AppContext.BaseDirectory, "ProfileArena.GcWorkload.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { child, "--engine", "java", "--trees", "1" })
            start.ArgumentList.Add(arg);
        using Process process = Process.Start(start)!;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(60)); // bounded: a child that hangs fails the test
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        Task<string> stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        Assert.Equal(2, process.ExitCode);
        Assert.Equal("gc-workload: unknown engine 'java' (valid: arena, baseline, arena-leak-per-tree, arena-leak-per-node)", (await stderr).Trim());
        Assert.Equal("", await stdout);
    }
}
