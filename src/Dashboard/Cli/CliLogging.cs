using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Fleet.Dashboard.Cli;

/// <summary>Logging for CLI commands: everything to stderr, so stdout stays clean for results (<c>--json</c>).</summary>
internal static class CliLogging
{
    /// <summary>Creates a console logger factory that writes every level to stderr.</summary>
    public static ILoggerFactory CreateFactory(LogLevel minimum = LogLevel.Information) => LoggerFactory.Create(b => b
        .SetMinimumLevel(minimum)
        .AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
            o.UseUtcTimestamp = true;
        })
        .AddFilter<ConsoleLoggerProvider>(null, minimum)
        .Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
}
