using Fleet.Ingest.Replay;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Cli;

/// <summary>What <c>dotnet run --project src/Dashboard</c> does with no arguments.</summary>
/// <remarks>
/// Until the dashboard lands: replays <c>sample-data/recording.hfp.gz</c> live (speed 1, looping) into the in-process
/// pipeline and logs what it sees every few seconds, until Ctrl+C.
/// </remarks>
internal static class DefaultRun
{
    /// <summary>The recording the default run replays, relative to the repository root.</summary>
    public const string SampleRecording = "sample-data/recording.hfp.gz";

    /// <summary>Runs the platform on its embedded default.</summary>
    public static async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var recording = FindSampleRecording();
        if (recording is null)
        {
            Console.Error.WriteLine($"fleet: {SampleRecording} not found (looked upwards from {Environment.CurrentDirectory} and {AppContext.BaseDirectory}).");
            Console.Error.WriteLine("fleet: generate the sample city first (see README.md), or replay a recording of your own: fleet replay FILE");
            return 1;
        }

        using var logging = CliLogging.CreateFactory();
        var logger = logging.CreateLogger("Fleet");
        CliLog.DefaultRunStarted(logger, recording);
        var settings = new ReplayCommand.ReplaySettings([recording], new ReplayOptions { Speed = 1, Loop = true }, TimeSpan.FromSeconds(5))
        {
            ProgressBar = false,
            StatusLine = line => CliLog.ReplayStatus(logger, line),
        };
        return await ReplayCommand.RunAsync(settings, new PipelineReplayTarget(logging), logging, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Looks for the sample recording above the working directory and above the executable.</summary>
    internal static string? FindSampleRecording()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, SampleRecording);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }
}
