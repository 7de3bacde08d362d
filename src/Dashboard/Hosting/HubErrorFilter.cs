using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Hosting;

/// <summary>
/// Hub errors go to the client as messages: a <see cref="HubException"/> (the client's mistake: an unknown id, a
/// malformed box) is returned to it as is and not logged above Debug; anything else is logged once, here, and the
/// client gets a short message naming the method, never a stack trace.
/// </summary>
public sealed partial class HubErrorFilter(ILogger<HubErrorFilter> logger) : IHubFilter
{
    /// <inheritdoc />
    public async ValueTask<object?> InvokeMethodAsync(HubInvocationContext invocationContext, Func<HubInvocationContext, ValueTask<object?>> next)
    {
        ArgumentNullException.ThrowIfNull(invocationContext);
        ArgumentNullException.ThrowIfNull(next);
        try
        {
            return await next(invocationContext).ConfigureAwait(false);
        }
        catch (HubException ex)
        {
            LogRefused(invocationContext.HubMethodName, ex.Message);
            throw;
        }
#pragma warning disable CA1031 // Turned into a message for the client; logged here.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            LogFailed(invocationContext.HubMethodName, ex);
            throw new HubException($"{invocationContext.HubMethodName} failed on the server");
        }
    }

    [LoggerMessage(EventId = 5060, Level = LogLevel.Debug, Message = "Hub call {Method} refused: {Reason}")]
    private partial void LogRefused(string method, string reason);

    [LoggerMessage(EventId = 5061, Level = LogLevel.Error, Message = "Hub call {Method} failed")]
    private partial void LogFailed(string method, Exception exception);
}
