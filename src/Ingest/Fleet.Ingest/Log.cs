using Microsoft.Extensions.Logging;

namespace Fleet.Ingest;

/// <summary>Ingest log messages (event ids 1000-1099 for parsing and recordings, 1100-1199 for replay).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1001, Level = LogLevel.Warning, Message = "Rejected HFP message ({Reason}): {Detail} [topic {Topic}]; {Suppressed} earlier rejections not logged")]
    public static partial void MessageRejected(ILogger logger, RejectReason reason, string detail, string topic, long suppressed);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Rejected recording line {Source}:{Line} ({Reason}); {Suppressed} earlier rejections not logged")]
    public static partial void LineRejected(ILogger logger, string source, long line, RejectReason reason, long suppressed);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Information, Message = "Replay of {Files} file(s) at speed {Speed} started")]
    public static partial void ReplayStarted(ILogger logger, int files, string speed);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Information, Message = "Replay loop {Loop} finished after {Messages} messages; starting again")]
    public static partial void ReplayLooped(ILogger logger, int loop, long messages);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Information, Message = "Replay finished: {Messages} messages")]
    public static partial void ReplayFinished(ILogger logger, long messages);
}

/// <summary>
/// Lets at most <c>limit</c> log lines through per window and counts the rest, so a flood of bad input costs
/// a counter increment, not a log line.
/// </summary>
/// <remarks>Not thread-safe: one per ingest loop.</remarks>
internal sealed class LogRateLimiter(TimeProvider timeProvider, int limit, TimeSpan window)
{
    private long _windowStart = long.MinValue;
    private int _used;
    private long _suppressed;

    /// <summary>True when a line may be logged now; <paramref name="suppressed"/> is how many were dropped since the last one.</summary>
    public bool TryAcquire(out long suppressed)
    {
        suppressed = 0;
        var now = timeProvider.GetTimestamp();
        if (_windowStart == long.MinValue || timeProvider.GetElapsedTime(_windowStart, now) >= window)
        {
            _windowStart = now;
            _used = 0;
        }

        if (_used >= limit)
        {
            _suppressed++;
            return false;
        }

        _used++;
        suppressed = _suppressed;
        _suppressed = 0;
        return true;
    }
}
