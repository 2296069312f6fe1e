namespace ProfileArena.Server.Hosting;

/// <summary>Configuration section <c>Server</c>: binding policy and request limits.</summary>
public sealed class ServerOptions
{
    public const string Section = "Server";

    /// <summary>Allows binding addresses other than loopback when no tenant (no authentication) is
    /// configured. Off by default: an unauthenticated server refuses to listen beyond this machine.</summary>
    public bool AllowNonLoopback { get; set; }

    /// <summary>Largest request body in bytes (413 beyond; default 32 MiB).</summary>
    public long MaxRequestBodyBytes { get; set; } = 32L << 20;

    /// <summary>Largest decompressed profile in bytes (a gzip body inflating past it is refused; default 128 MiB).</summary>
    public long MaxDecompressedBytes { get; set; } = 128L << 20;

    /// <summary>Most distinct call-tree nodes one ingest request may carry (default 2,000,000).</summary>
    public long MaxNodesPerRequest { get; set; } = 2_000_000;

    /// <summary>Most labels in an ingest <c>name</c> (default 32).</summary>
    public int MaxLabels { get; set; } = 32;

    /// <summary>Longest application name and series name in characters (default 256).</summary>
    public int MaxNameLength { get; set; } = 256;

    /// <summary>Longest label name in characters (default 128).</summary>
    public int MaxLabelNameLength { get; set; } = 128;

    /// <summary>Longest label value in characters (default 1024).</summary>
    public int MaxLabelValueLength { get; set; } = 1024;

    /// <summary>Longest query selector in characters (default 4096).</summary>
    public int MaxSelectorLength { get; set; } = 4096;

    /// <summary>Node cap of the temporary tree a query merges into (default 5,000,000); past it the query is 413.</summary>
    public long MaxQueryNodes { get; set; } = 5_000_000;

    /// <summary>Native-byte cap of that temporary tree (default 1 GiB).</summary>
    public long MaxQueryNativeBytes { get; set; } = 1L << 30;

    /// <summary>Most queries merging at once (0, the default: no limit). Queries past it wait, without a thread, for
    /// one to finish: a merge takes a core for its whole length, and queries on every core leave none to the writes'
    /// decode and apply (perf/README, "Eighth session").</summary>
    public int MaxConcurrentQueries { get; set; }

    /// <summary>Threads of their own that queries merge on, at a lower priority (<see cref="QueryThreadNice"/>); at most
    /// this many merge at once (one per core is the natural choice). 0, the default: queries merge on the request's
    /// thread, at its priority. A trade measured in perf/README, "Ninth session": writes faster, renders slower.</summary>
    public int QueryThreads { get; set; }

    /// <summary>How much lower the query threads' priority is: added to their Linux nice value (default 19, capped at
    /// 19: writes first, queries on what they leave); elsewhere any value above 0 means below normal; 0: the same
    /// priority as the requests.</summary>
    public int QueryThreadNice { get; set; } = 19;

    /// <summary>Seconds a client may take to send its request headers (default 30).</summary>
    public int RequestHeadersTimeoutSeconds { get; set; } = 30;

    /// <summary>Seconds an idle keep-alive connection is kept (default 120).</summary>
    public int KeepAliveTimeoutSeconds { get; set; } = 120;

    /// <summary>Most glibc malloc arenas, the C heap the stores' small slabs come from (default 2; 0 keeps
    /// glibc's 8 per core). Fewer arenas keep fewer freed holes resident: see <see cref="Operations.NativeHeap"/>.</summary>
    public int MallocArenas { get; set; } = 2;

    /// <summary>Thread-pool worker threads the pool creates on demand without its usual delay (default 64; 0 keeps
    /// the runtime's, one per core). A query blocks its thread while it waits for acknowledged writes to be applied
    /// and while it merges; with one thread per core, requests arriving meanwhile queued until the pool added a
    /// thread (about two a second), which showed as a render and ingest latency tail under load (perf/README).</summary>
    public int MinWorkerThreads { get; set; } = 64;

    /// <summary>Most seconds the server spends warming up before <c>/readyz</c> says ready (0 = none): it runs its own
    /// ingest and render paths on a scratch storage until the JIT has compiled them optimised (it ends as soon as the
    /// JIT goes quiet, ≈ 14–19 s on 2 cores). Without it the first 10–15 s of traffic ran partly unoptimised code
    /// (<see cref="StartupWarmup"/>, perf/README "Tenth session").</summary>
    public int WarmupSeconds { get; set; } = 30;

    /// <summary>Slowest accepted body upload in bytes per second after a 5 s grace (default 240, Kestrel's).</summary>
    public double MinRequestBodyBytesPerSecond { get; set; } = 240;
}

/// <summary>Configuration section <c>Auth</c>: <c>Auth:Tenants:&lt;tenant&gt;</c> = API key.</summary>
public sealed class AuthOptions
{
    public const string Section = "Auth";

    /// <summary>Tenant name → API key. Empty: single tenant <see cref="TenantResolver.AnonymousTenant"/>, no authentication.</summary>
    public Dictionary<string, string> Tenants { get; set; } = new(StringComparer.Ordinal);
}
