namespace ProfileArena.Tests.Support;

/// <summary>Tests that read the process-wide native byte counter run alone (no parallel store changes it).</summary>
[CollectionDefinition(nameof(ProcessNativeMemory), DisableParallelization = true)]
public sealed class ProcessNativeMemory;
