namespace ProfileArena.Server.Http;

/// <summary>A request the server refuses, with the status to answer and a message that says what is
/// wrong and where (parameter, line, byte offset). Thrown by parsers, turned into a plain-text reply by
/// <see cref="ApiHandler"/>; never used for server faults.</summary>
public sealed class RequestException(int status, string message) : Exception(message)
{
    /// <summary>The HTTP status to answer (4xx, or 429/503 when storage refuses).</summary>
    public int Status { get; } = status;

    /// <summary>A 400 Bad Request.</summary>
    public static RequestException BadRequest(string message) => new(StatusCodes.Status400BadRequest, message);
}
