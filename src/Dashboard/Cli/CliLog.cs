using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Cli;

/// <summary>CLI log messages (event ids 5100-5199).</summary>
internal static partial class CliLog
{
    [LoggerMessage(EventId = 5101, Level = LogLevel.Information, Message = "Replaying {Recording} live (speed 1, looping) into the pipeline; Ctrl+C stops")]
    public static partial void DefaultRunStarted(ILogger logger, string recording);

    [LoggerMessage(EventId = 5102, Level = LogLevel.Information, Message = "{Status}")]
    public static partial void ReplayStatus(ILogger logger, string status);
}
