using System.Globalization;
using Fleet.Gtfs;
using Fleet.Gtfs.Realtime;
using Fleet.Predict;
using Fleet.Tracking.Output;
using Fleet.Tracking.Replay;

namespace Fleet.Dashboard.Cli;

/// <summary>
/// <c>fleet replay ARCHIVE --gtfs GTFS [--model M | --predictions] [--out-events FILE]</c>: a recorded day of
/// GTFS-Realtime TripUpdates (folder, .zip or .tar.gz of snapshots) tracked from its observed stop events alone
/// (<see cref="TripUpdateArchiveReplay"/>), at full speed, byte-identical on every run.
/// </summary>
internal static class ArchiveReplay
{
    /// <summary>True when <paramref name="path"/> is a folder or an archive (.tar.gz, or a .zip of snapshots).</summary>
    public static bool IsArchive(string path) =>
        Directory.Exists(path) || (File.Exists(path) && (GtfsRtArchive.IsArchiveFile(path) && !path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase) || GtfsRtArchive.IsSnapshotZip(path)));

    /// <summary>Runs the replay; returns the exit code.</summary>
    public static int Run(string archive, string? gtfsPath, string? eventsPath, bool predictions, string? modelPath, CancellationToken ct)
    {
        if (gtfsPath is null)
        {
            Console.Error.WriteLine($"fleet replay: {Path.GetFileName(archive)} is a GTFS-Realtime archive; give --gtfs, the static schedule its trips run on");
            return 2;
        }

        var schedule = GtfsLoader.Load(gtfsPath);
        IArrivalPredictor? predictor = null;
        var profile = ArrivalModel.BindProfile(new Fleet.Predict.Online.HistoricalProfile(), schedule);
        if (modelPath is not null)
        {
            ArrivalModel model;
            try
            {
                model = ArrivalModel.Load(modelPath);
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"fleet replay: --model: {ex.Message}");
                return 2;
            }

            var set = model.Bind(schedule);
            predictor = set.Best;
            profile = set.Profile;
        }
        else if (predictions)
        {
            predictor = new PredictorSet(profile).All.Single(p => p.Name == "delay");
        }

        using var stream = eventsPath is null ? Stream.Null : new BufferedStream(File.Create(eventsPath), 1 << 16);
        using var json = new JsonLinesOutput(stream, leaveOpen: true);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var figures = TripUpdateArchiveReplay.Run(schedule, archive, predictor, profile, json, ct);
        json.Flush();
        var ci = CultureInfo.InvariantCulture;
        var predictorName = predictor is null ? "none: add --model or --predictions" : predictor.Name;
        var notUsed = figures.Rejections.Count > 0 ? "; not used: " + string.Join(", ", figures.Rejections.Select(r => string.Create(ci, $"{r.Key} {r.Value:N0}"))) : string.Empty;
        var written = eventsPath is null ? string.Empty : "; events: " + eventsPath;
        Console.WriteLine(string.Create(ci,
            $"done: {figures.Snapshots:N0} snapshots in {clock.Elapsed.TotalSeconds:0.0} s, {figures.TripsMatched:N0} trips tracked from TripUpdates alone, {figures.TripsSkipped:N0} not in the schedule (skipped); {figures.Arrivals:N0} arrivals, {figures.Departures:N0} departures, {figures.Predictions:N0} predictions ({predictorName}){notUsed}{written}"));
        return 0;
    }
}
