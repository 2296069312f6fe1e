using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;
using ProfileArena.Formats;
using ProfileArena.Server.Buffers;
using ProfileArena.Server.Hosting;
using ProfileArena.Server.Http;
using ProfileArena.Server.Storage;

namespace ProfileArena.Server.Ingest;

/// <summary>The body formats an ingest request may carry.</summary>
public enum IngestFormat
{
    /// <summary><c>stack count</c> lines (pyroscope's "groups"), the default.</summary>
    Folded,
    /// <summary>One stack per line, each counting 1.</summary>
    Lines,
    /// <summary>A pprof profile.proto, gzipped or not, raw or in the <c>profile</c> part of a multipart form.</summary>
    Pprof,
}

/// <summary>
/// Turns one ingest request's body into the profiles to store, all decoded before anything is stored.
/// The format is chosen as pyroscope's server chooses it (ingest_handler.go): <c>format=trie|tree</c>
/// (or content type <c>binary/octet-stream+trie|+tree</c>), <c>jfr</c> and <c>speedscope</c> are not
/// supported (400); <c>format=lines</c>; <c>format=pprof</c>; else a <c>multipart/form-data</c> body is
/// pprof; else — with one addition: a body starting with gzip's magic bytes is pprof — folded.
/// </summary>
public sealed class IngestDecoder(ServerOptions options)
{
    /// <summary>Chooses the format.</summary>
    /// <exception cref="RequestException">400 for a format the server does not read.</exception>
    public static IngestFormat ChooseFormat(string? format, string? contentType, ReadOnlySpan<byte> body)
    {
        contentType ??= "";
        if (format is "trie" or "tree" or "jfr" or "speedscope" || contentType.StartsWith("binary/octet-stream+", StringComparison.OrdinalIgnoreCase))
            throw RequestException.BadRequest($"format '{format ?? contentType}' is not supported by this server (supported: folded (default), lines, pprof, multipart pprof)");
        if (format == "lines") return IngestFormat.Lines;
        if (format == "pprof" || IsMultipart(contentType) || PprofFormat.IsGzip(body)) return IngestFormat.Pprof;
        return IngestFormat.Folded;
    }

    private static bool IsMultipart(string contentType) => contentType.Contains("multipart/form-data", StringComparison.OrdinalIgnoreCase);

    /// <summary>Decodes <paramref name="body"/> for <paramref name="tenant"/>.</summary>
    /// <exception cref="RequestException">400 naming what is wrong (line, field), 413 past a limit, 415 for a form without <c>profile</c>.</exception>
    public List<IngestProfile> Decode(string tenant, IngestParameters parameters, string? contentType, ReadOnlyMemory<byte> body)
    {
        IngestFormat format = ChooseFormat(parameters.Format, contentType, body.Span);
        try
        {
            return format switch
            {
                IngestFormat.Folded => One(tenant, parameters, Folded(body)),
                IngestFormat.Lines => One(tenant, parameters, Lines(body)),
                _ => Pprof(tenant, parameters, contentType, body),
            };
        }
        catch (StoreLimitExceededException e)
        {
            throw new RequestException(StatusCodes.Status413PayloadTooLarge,
                $"body: the profile has more than {options.MaxNodesPerRequest} distinct call-tree nodes (Server:MaxNodesPerRequest): {e.Message}");
        }
    }

    private static List<IngestProfile> One(string tenant, IngestParameters p, StackBatch stacks)
    {
        if (stacks.Count > 0) return [new IngestProfile(p.Name.Key(tenant, p.Name.App), p.From, p.Until, p.Metadata, stacks)];
        stacks.Dispose();
        return [];
    }

    /// <summary>The tree a folded or lines body is summed in (its nodes counted against Server:MaxNodesPerRequest).</summary>
    private TreeStore Staging() => new(new TreeStoreOptions { MaxNodes = options.MaxNodesPerRequest });

    private StackBatch Folded(ReadOnlyMemory<byte> body)
    {
        using TreeStore staging = Staging();
        ProfileTree tree = staging.CreateTree();
        try
        {
            using Stream input = BoundedGzip.ReadOnlyStream(body);
            FoldedFormat.Import(input, tree, new FoldedImportOptions { AllowEmpty = true });
        }
        catch (ProfileFormatException e)
        {
            throw RequestException.BadRequest($"body (folded 'stack count' lines): line {e.LineNumber}: {e.Reason}{(e.Excerpt is null ? "" : $": \"{e.Excerpt}\"")}");
        }
        catch (OverflowException e)
        {
            throw RequestException.BadRequest($"body (folded): {e.Message}");
        }
        return ToBatch(tree);
    }

    private StackBatch Lines(ReadOnlyMemory<byte> body)
    {
        using TreeStore staging = Staging();
        ProfileTree tree = staging.CreateTree();
        ReadOnlySpan<byte> rest = body.Span;
        while (!rest.IsEmpty)
        {
            int nl = rest.IndexOf((byte)'\n');
            ReadOnlySpan<byte> line = nl < 0 ? rest : rest[..nl];
            rest = nl < 0 ? default : rest[(nl + 1)..];
            if (!line.IsEmpty && line[^1] == (byte)'\r') line = line[..^1];
            if (!line.IsEmpty) tree.Insert(line, 1);
        }
        return ToBatch(tree);
    }

    private List<IngestProfile> Pprof(string tenant, IngestParameters p, string? contentType, ReadOnlyMemory<byte> body)
    {
        SampleTypeTable table = SampleTypeTable.Default;
        ReadOnlyMemory<byte> profile = body;
        PooledBuffer? part = null, inflated = null;
        List<(StackBatch Stacks, bool Known, (string SeriesType, string Units, string Aggregation) Described)>? decoded = null;
        var result = new List<IngestProfile>();
        try
        {
            if (IsMultipart(contentType ?? ""))
            {
                (part, table) = ReadForm(contentType!, body);
                profile = part.WrittenMemory;
            }
            if (PprofFormat.IsGzip(profile.Span))
            {
                inflated = BoundedGzip.Decompress(profile, options.MaxDecompressedBytes, "profile");
                profile = inflated.WrittenMemory;
            }
            if (profile.Length > options.MaxDecompressedBytes)
                throw new RequestException(StatusCodes.Status413PayloadTooLarge, $"profile: larger than {options.MaxDecompressedBytes} bytes (Server:MaxDecompressedBytes)");
            decoded = [.. PprofSeries(profile)
                .Select(t => (t.Stacks, Known: table.IsKnown(t.Type), Described: table.Describe(t.Type, t.Unit)))];
            // A type the table knows claims its series name first; a type it does not know whose own name
            // collides is left out, as pyroscope (which stores only the types its table knows) leaves it out:
            // Go's cpu/nanoseconds beside samples/count (→ cpu).
            var claimed = new Dictionary<string, bool>(StringComparer.Ordinal);
            foreach (var d in decoded.Where(d => d.Known))
            {
                if (!claimed.TryAdd(d.Described.SeriesType, true))
                    throw RequestException.BadRequest($"profile: two sample types map to the series '{p.Name.App}.{d.Described.SeriesType}'; send a sample_type_config that names them apart");
            }
            foreach (var (stacks, known, (seriesType, units, aggregation)) in decoded)
            {
                if (!known && !claimed.TryAdd(seriesType, false)) continue;
                string seriesName = $"{p.Name.App}.{seriesType}";
                if (seriesName.Length > options.MaxNameLength + 64)
                    throw RequestException.BadRequest($"profile: series name '{TimeParameter.Excerpt(seriesName)}' is too long");
                if (stacks.Count == 0) continue;
                var metadata = p.Metadata with { Units = units, AggregationType = aggregation };
                result.Add(new IngestProfile(p.Name.Key(tenant, seriesName), p.From, p.Until, metadata, stacks));
            }
            return result;
        }
        catch
        {
            result.Clear();
            throw;
        }
        finally
        {
            // Every batch not handed out in the result goes back to the pool (all of them when this throws).
            if (decoded != null)
            {
                foreach (var d in decoded)
                {
                    if (!result.Any(r => ReferenceEquals(r.Stacks, d.Stacks))) d.Stacks.Dispose();
                }
            }
            inflated?.Dispose();
            part?.Dispose();
        }
    }

    /// <summary>Each sample type of the profile with its stacks: one <see cref="PprofFormat.ReadInPlace"/> pass
    /// into <see cref="PprofStackSums"/> (which sums repeated stacks and counts the nodes they make).</summary>
    private List<(string Type, string Unit, StackBatch Stacks)> PprofSeries(ReadOnlyMemory<byte> raw)
    {
        using var sink = new PprofStackSums(options.MaxNodesPerRequest);
        try
        {
            PprofFormat.ReadInPlace(raw, sink, new PprofImportOptions { MaxBytes = Math.Max(16, Math.Min(int.MaxValue, options.MaxDecompressedBytes)) });
        }
        catch (ProfileFormatException e)
        {
            throw RequestException.BadRequest($"profile (pprof): {e.Reason}");
        }
        return [.. sink.TakeSeries().Select(s => (s.Type.Type, s.Type.Unit, s.Stacks))];
    }

    /// <summary>Reads a multipart form: part <c>profile</c> (required: 415 without it), optional
    /// <c>sample_type_config</c>; a <c>prev_profile</c> (cumulative deltas) is refused with 400, as
    /// grafana/pyroscope refuses it.</summary>
    private static (PooledBuffer Profile, SampleTypeTable Table) ReadForm(string contentType, ReadOnlyMemory<byte> body)
    {
        if (!MediaTypeHeaderValue.TryParse(contentType, out MediaTypeHeaderValue? media))
            throw RequestException.BadRequest($"Content-Type: cannot parse '{TimeParameter.Excerpt(contentType)}'");
        string boundary = HeaderUtilities.RemoveQuotes(media.Boundary).ToString();
        if (boundary.Length == 0 || boundary.Length > 200)
            throw RequestException.BadRequest("Content-Type: multipart/form-data needs a boundary of 1-200 characters");
        var reader = new MultipartReader(boundary, BoundedGzip.ReadOnlyStream(body)) { BodyLengthLimit = body.Length };
        PooledBuffer? profile = null;
        byte[]? config = null;
        int parts = 0;
        try
        {
            MultipartSection? section;
            while ((section = reader.ReadNextSectionAsync().GetAwaiter().GetResult()) is not null)
            {
                if (++parts > 16) throw RequestException.BadRequest("multipart: more than 16 parts");
                string? field = null;
                if (ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out ContentDispositionHeaderValue? disposition))
                    field = HeaderUtilities.RemoveQuotes(disposition.Name).ToString();
                switch (field)
                {
                    case "profile":
                        profile?.Dispose();
                        profile = ReadPart(section.Body);
                        break;
                    case "sample_type_config":
                        using (PooledBuffer data = ReadPart(section.Body)) config = data.WrittenSpan.ToArray();
                        break;
                    default:
                        ReadPart(section.Body).Dispose();
                        break;
                    case "prev_profile":
                        throw RequestException.BadRequest("multipart: part 'prev_profile' (cumulative profiles sent as deltas) is not supported; send each profile's own values (pyroscope-go: upgrade the client)");
                }
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            profile?.Dispose();
            throw RequestException.BadRequest($"multipart: malformed form after {parts} parts: {e.Message}");
        }
        catch
        {
            profile?.Dispose();
            throw;
        }
        if (profile is null)
            throw new RequestException(StatusCodes.Status415UnsupportedMediaType, $"multipart: no part named 'profile' ({parts} parts read)");
        try
        {
            return (profile, config is null ? SampleTypeTable.Default : SampleTypeTable.Parse(config));
        }
        catch
        {
            profile.Dispose();
            throw;
        }
    }

    /// <summary>One form part's bytes in a pooled buffer (the form's own length limit bounds it).</summary>
    private static PooledBuffer ReadPart(Stream part)
    {
        var data = new PooledBuffer(16 << 10);
        try
        {
            int n;
            // 16 KiB at a time: the part's stream has no Read(Span) of its own, and Stream's fallback rents a
            // shared array as long as the span (a megabyte one would come from the Large Object Heap).
            while ((n = part.Read(data.GetSpan(16 << 10)[..(16 << 10)])) > 0) data.Advance(n);
            return data;
        }
        catch
        {
            data.Dispose();
            throw;
        }
    }

    /// <summary>The tree's stacks with their self values (nodes with self 0 carry nothing of their own).</summary>
    private static StackBatch ToBatch(ProfileTree tree)
    {
        var batch = new StackBatch();
        try
        {
            tree.Iterate((stack, self, total) =>
            {
                if (self > 0) batch.Add(stack, self);
            });
            return batch;
        }
        catch
        {
            batch.Dispose();
            throw;
        }
    }
}
