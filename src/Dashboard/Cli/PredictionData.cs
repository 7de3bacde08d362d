using Fleet.Gtfs;
using Fleet.Predict.Offline;
using Spectre.Console;

namespace Fleet.Dashboard.Cli;

/// <summary>Shared by <c>fleet train</c> and <c>fleet evaluate</c>: loads the schedule and replays recordings into days.</summary>
internal static class PredictionData
{
    /// <summary>Checks that every input file exists; prints an error naming the first missing one.</summary>
    public static bool CheckFiles(string command, IEnumerable<FileInfo?> files)
    {
        foreach (var f in files)
        {
            if (f is not null && !f.Exists)
            {
                Console.Error.WriteLine($"fleet {command}: file not found: {f.FullName}");
                return false;
            }
        }

        return true;
    }

    /// <summary>Reads each recording (paired in order with a truth file when given) into a replay day.</summary>
    public static List<ReplayDay> ReadDays(
        Schedule schedule, IReadOnlyList<FileInfo> recordings, IReadOnlyList<FileInfo> truths, ReplayOptions options,
        ProgressTask? task, TextWriter log, CancellationToken ct) =>
        RecordedDays.ReadHfp(
            schedule, [.. recordings.Select(r => r.FullName)], [.. truths.Select(t => t.FullName)], options,
            task is null ? null : f => task.Value = 100 * f, log, ct);
}
