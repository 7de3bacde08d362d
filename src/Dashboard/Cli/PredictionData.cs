using Fleet.Gtfs;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
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
        ProgressTask? task, TextWriter log, CancellationToken ct)
    {
        var days = new List<ReplayDay>();
        for (var i = 0; i < recordings.Count; i++)
        {
            var replay = new OfflineReplay(schedule, options);
            var stream = new HfpStream();
            using (var reader = RecordingReader.Open(recordings[i].FullName))
            {
                while (reader.TryRead(out var line))
                {
                    if (stream.Process(line, out var ev) == HfpOutcome.Event)
                    {
                        replay.Add(ev);
                    }

                    if ((reader.LineNumber & 0x3FFF) == 0)
                    {
                        ct.ThrowIfCancellationRequested();
                        if (task is not null && reader.Progress is { } p)
                        {
                            task.Value = 100.0 * (i + p) / recordings.Count;
                        }
                    }
                }
            }

            replay.FinishDetection();
            ActualStopTimes actuals;
            string source;
            if (truths.Count > 0)
            {
                actuals = ActualStopTimes.ReadTruthCsv(truths[i].FullName, schedule);
                source = truths[i].Name;
            }
            else
            {
                actuals = replay.Detected;
                source = "arrivals detected from HFP stop events";
            }

            log.WriteLine(
                $"{recordings[i].Name}: {stream.Messages:N0} messages, {replay.Samples:N0} prediction points, {replay.UnmatchedTrip:N0} events without a schedule trip; " +
                $"ground truth from {source}: {actuals.Trips.Count:N0} trips, {actuals.Accepted:N0} stop times" +
                (actuals.Rejections.Count > 0 ? $", rejected {string.Join(", ", actuals.Rejections.Select(r => $"{r.Key} {r.Value:N0}"))}" : string.Empty));
            days.Add(new ReplayDay(replay, actuals));
        }

        if (task is not null)
        {
            task.Value = 100;
        }

        return days;
    }
}
