using Microsoft.AspNetCore.Http.Features;
using ProfileArena.Server.Buffers;
using ProfileArena.Server.Hosting;
using ProfileArena.Server.Storage;

namespace ProfileArena.Server.Http;

/// <summary>
/// The one place where an API request is authenticated and its failures become replies: a
/// <see cref="RequestException"/> its status, Kestrel's <see cref="BadHttpRequestException"/> (body
/// too large, too slow) its own, storage refusals 429/503 and a write storage could not confirm 504 — each with a
/// plain-text message that says what is wrong. A 5xx is only ever storage's 503/504 or a real server fault.
/// </summary>
public sealed class ApiHandler(TenantResolver tenants, IProfileStorage storage, ILogger<ApiHandler> log)
{
    /// <summary>Authenticates, waits for storage to be ready, then runs <paramref name="handler"/> with the tenant.</summary>
    public async Task Run(HttpContext context, Func<string, Task> handler)
    {
        try
        {
            string? tenant = tenants.Resolve(context.Request, out string? failure);
            if (tenant is null)
            {
                context.Response.Headers.WWWAuthenticate = "Bearer, Basic realm=\"profilearena\"";
                await Reply(context, StatusCodes.Status401Unauthorized, failure!);
                return;
            }
            if (!storage.IsReady)
            {
                context.Response.Headers.RetryAfter = "5";
                await Reply(context, StatusCodes.Status503ServiceUnavailable, "storage is replaying its write-ahead log; retry shortly");
                return;
            }
            await handler(tenant);
        }
        catch (RequestException e)
        {
            await Reply(context, e.Status, e.Message);
        }
        catch (BadHttpRequestException e)
        {
            await Reply(context, e.StatusCode, e.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? $"request body too large (Server:MaxRequestBodyBytes): {e.Message}" : e.Message);
        }
        catch (StorageFullException e)
        {
            context.Response.Headers.RetryAfter = "30";
            await Reply(context, StatusCodes.Status429TooManyRequests, $"storage is full: {e.Message}");
        }
        catch (StorageOutcomeUnknownException e)
        {
            log.LogError(e, "storage did not confirm a write");
            context.Response.Headers.RetryAfter = e.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await Reply(context, StatusCodes.Status504GatewayTimeout, $"storage did not confirm the write, it may or may not have been stored: {e.Message}");
        }
        catch (StorageUnavailableException e)
        {
            log.LogError(e, "storage could not make a write durable");
            context.Response.Headers.RetryAfter = e.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await Reply(context, StatusCodes.Status503ServiceUnavailable, $"storage unavailable, nothing was stored: {e.Message}");
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nothing to answer.
        }
    }

    /// <summary>Writes a plain-text reply (unless the response has started: then the connection is aborted).</summary>
    public async Task Reply(HttpContext context, int status, string message)
    {
        if (status >= 400)
            log.LogInformation("{Method} {Path} -> {Status}: {Message}", context.Request.Method, context.Request.Path, status, message);
        if (context.Response.HasStarted)
        {
            context.Abort();
            return;
        }
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(message + "\n");
    }

    /// <summary>Reads the request body into a pooled buffer (the caller disposes it), at most
    /// <paramref name="maxBytes"/> (413 beyond). On any failure the buffer is returned before the exception leaves.</summary>
    public static async Task<PooledBuffer> ReadBody(HttpRequest request, long maxBytes, CancellationToken cancel)
    {
        var sizeFeature = request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (sizeFeature is { IsReadOnly: false }) sizeFeature.MaxRequestBodySize = maxBytes;
        if (request.ContentLength > maxBytes)
            throw new RequestException(StatusCodes.Status413PayloadTooLarge, $"request body of {request.ContentLength} bytes is over the limit of {maxBytes} (Server:MaxRequestBodyBytes)");
        // One byte more than a declared length, so the read that sees the end needs no bigger array.
        var buffer = new PooledBuffer(request.ContentLength is long n and > 0 ? (int)n + 1 : 64 << 10);
        try
        {
            while (true)
            {
                int read = await request.Body.ReadAsync(buffer.GetMemory(16 << 10), cancel);
                if (read == 0) break;
                if (buffer.Length + (long)read > maxBytes)
                    throw new RequestException(StatusCodes.Status413PayloadTooLarge, $"request body over the limit of {maxBytes} bytes (Server:MaxRequestBodyBytes)");
                buffer.Advance(read);
            }
            return buffer;
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }
}
