using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Fleet.Dashboard.Hosting;

/// <summary>
/// Requires the API key on the API, the hub, <c>/metrics</c> and <c>/gtfs-rt</c> when one is configured. The key is
/// taken from the <c>X-Api-Key</c> header, an <c>Authorization: Bearer</c> header, or the <c>access_token</c> query
/// parameter (what the SignalR browser client sends on WebSockets). The page itself stays public so it can ask.
/// </summary>
public sealed class ApiKeyMiddleware(RequestDelegate next, string apiKey)
{
    private readonly byte[] _key = Encoding.UTF8.GetBytes(apiKey);

    /// <summary>The header that carries the key.</summary>
    public const string HeaderName = "X-Api-Key";

    /// <summary>Handles one request.</summary>
    public Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var path = context.Request.Path;
        var protectedPath = path.StartsWithSegments("/api") || path.StartsWithSegments("/hubs")
            || path.StartsWithSegments("/metrics") || path.StartsWithSegments("/gtfs-rt");
        if (!protectedPath || IsValid(Presented(context.Request)))
        {
            return next(context);
        }

        context.Response.Headers.WWWAuthenticate = "Bearer";
        return Problems.WriteAsync(context, StatusCodes.Status401Unauthorized, "missing or wrong API key (X-Api-Key header, Bearer token or access_token query)");
    }

    private static string? Presented(HttpRequest request)
    {
        if (request.Headers.TryGetValue(HeaderName, out var header) && header.Count > 0)
        {
            return header[0];
        }

        var auth = request.Headers.Authorization.ToString();
        if (auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return auth["Bearer ".Length..].Trim();
        }

        return request.Query.TryGetValue("access_token", out var token) ? token.ToString() : null;
    }

    private bool IsValid(string? presented) =>
        presented is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), _key);
}
