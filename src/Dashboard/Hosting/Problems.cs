using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Hosting;

/// <summary>
/// Every 4xx and 5xx of the API as an RFC 7807 <c>application/problem+json</c> body: <c>type</c>, <c>title</c>,
/// <c>status</c>, <c>detail</c> (what is wrong, naming the input) and, for clients written against the first API,
/// <c>error</c> = <c>detail</c>.
/// </summary>
public static partial class Problems
{
    /// <summary>400: the request is malformed; <paramref name="detail"/> says which input and why.</summary>
    public static IResult BadRequest(string detail) => Problem(StatusCodes.Status400BadRequest, detail);

    /// <summary>404: the id (or the resource) does not exist.</summary>
    public static IResult NotFound(string detail) => Problem(StatusCodes.Status404NotFound, detail);

    /// <summary>A problem result with the given status.</summary>
    public static IResult Problem(int status, string detail) =>
        Results.Problem(detail: detail, statusCode: status, title: Title(status), extensions: new Dictionary<string, object?> { ["error"] = detail });

    /// <summary>Writes a problem body outside an endpoint (middleware).</summary>
    public static Task WriteAsync(HttpContext context, int status, string detail)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Response.StatusCode = status;
        var problem = new ProblemDetails { Status = status, Title = Title(status), Detail = detail, Type = $"https://httpstatuses.io/{status}" };
        problem.Extensions["error"] = detail;
        return context.Response.WriteAsJsonAsync(problem, (System.Text.Json.JsonSerializerOptions?)null, "application/problem+json");
    }

    /// <summary>
    /// Adds the handlers that give the framework's own errors a problem body: binding failures (a query value that
    /// is not a number, a body that is not the expected JSON) as 400 naming the parameter, unknown paths as 404,
    /// and any unhandled exception as 500 without its stack trace.
    /// </summary>
    public static void UseProblems(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseExceptionHandler(handler => handler.Run(context =>
        {
            var error = context.Features.Get<IExceptionHandlerFeature>()?.Error;
            if (error is BadHttpRequestException bad)
            {
                return WriteAsync(context, bad.StatusCode, bad.Message);
            }

            // The framework's own log line for it is filtered out (it would also log every 400): logged here.
            LogUnhandled(context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(Problems).FullName!), context.Request.Path, error);
            return WriteAsync(context, StatusCodes.Status500InternalServerError, $"the server failed on {context.Request.Path} (logged)");
        }));
        app.UseStatusCodePages(context =>
        {
            var http = context.HttpContext;
            var detail = http.Response.StatusCode switch
            {
                StatusCodes.Status404NotFound => $"no such endpoint: {http.Request.Method} {http.Request.Path}",
                StatusCodes.Status405MethodNotAllowed => $"{http.Request.Method} is not allowed on {http.Request.Path}",
                StatusCodes.Status415UnsupportedMediaType => $"{http.Request.Path} takes application/json",
                var s => $"{Title(s)}: {http.Request.Method} {http.Request.Path}",
            };
            return WriteAsync(http, http.Response.StatusCode, detail);
        });
    }

    /// <summary>Registers what <see cref="UseProblems"/> needs: problem details, and binding failures thrown (so they
    /// reach the handler with their message) instead of answered with an empty 400.</summary>
    public static void AddProblems(this IServiceCollection services)
    {
        services.AddProblemDetails();
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
    }

    [LoggerMessage(EventId = 5062, Level = LogLevel.Error, Message = "Request {Path} failed")]
    private static partial void LogUnhandled(ILogger logger, string path, Exception? exception);

    private static string Title(int status) => status switch
    {
        400 => "Bad request",
        401 => "Unauthorized",
        404 => "Not found",
        405 => "Method not allowed",
        415 => "Unsupported media type",
        500 => "Internal server error",
        _ => $"HTTP {status}",
    };
}
