using System.CommandLine;
using Fleet.Gtfs;
using Fleet.Predict.Offline;
using Spectre.Console;

namespace Fleet.Dashboard.Cli;

/// <summary>Where train and evaluate get the static schedule: a GTFS feed, or a timetable inferred from a TripUpdates archive.</summary>
/// <param name="Gtfs">--gtfs.</param>
/// <param name="TimetableFrom">--timetable-from.</param>
/// <param name="TimeZone">--timezone (with --timetable-from).</param>
internal sealed record ScheduleSource(FileInfo? Gtfs, string? TimetableFrom, string? TimeZone);

/// <summary>The options of train and evaluate that say which days to read and against which schedule.</summary>
internal sealed class DayOptions
{
    private readonly Option<FileInfo> _gtfs = new("--gtfs") { Description = "The GTFS static feed (zip or folder) the recordings run on" };
    private readonly Option<string> _timetableFrom = new("--timetable-from")
    {
        Description = "Instead of --gtfs: infer the timetable from a TripUpdates archive's observed events (scheduled = time - delay), for a network without its GTFS",
    };

    private readonly Option<string> _timeZone = new("--timezone") { Description = "With --timetable-from: the agency's IANA time zone, e.g. Pacific/Auckland" };
    private readonly Option<FileInfo[]> _recordings = new("--recording") { Description = "Recording(s) of HFP lines (.txt or .gz); one day each", AllowMultipleArgumentsPerToken = true };
    private readonly Option<string[]> _archives = new("--gtfs-rt")
    {
        Description = "GTFS-Realtime TripUpdates archive(s) instead: a folder, .zip or .tar.gz of snapshots (protobuf or JSON); one day each. Observed stop events are the ground truth",
        AllowMultipleArgumentsPerToken = true,
    };

    private readonly Option<string> _window = new("--window") { Description = "With --gtfs-rt: only polls in this local time of day, HH:mm-HH:mm (e.g. train on 04:00-14:00, evaluate on 14:00-24:00)" };
    private readonly Option<FileInfo[]> _truths = new("--truth") { Description = "Ground truth truth.csv per recording (same order); without it, arrivals are detected from HFP stop events", AllowMultipleArgumentsPerToken = true };

    /// <summary>Adds the options to a command.</summary>
    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _gtfs, _timetableFrom, _timeZone, _recordings, _truths, _archives, _window })
        {
            command.Options.Add(option);
        }
    }

    /// <summary>--gtfs, or --timetable-from with --timezone.</summary>
    public ScheduleSource Schedule(ParseResult parse) => new(parse.GetValue(_gtfs), parse.GetValue(_timetableFrom), parse.GetValue(_timeZone));

    /// <summary>--recording.</summary>
    public FileInfo[] Recordings(ParseResult parse) => parse.GetValue(_recordings) ?? [];

    /// <summary>--truth.</summary>
    public FileInfo[] Truths(ParseResult parse) => parse.GetValue(_truths) ?? [];

    /// <summary>--gtfs-rt.</summary>
    public string[] Archives(ParseResult parse) => parse.GetValue(_archives) ?? [];

    /// <summary>--window.</summary>
    public string? Window(ParseResult parse) => parse.GetValue(_window);
}

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

    /// <summary>Reads GTFS-Realtime TripUpdates archives (folder, .zip, .tar.gz) into replay days, one per archive.</summary>
    public static List<ReplayDay> ReadArchiveDays(
        Schedule schedule, IReadOnlyList<string> archives, PollWindow window, ReplayOptions options, ProgressTask? task, TextWriter log, CancellationToken ct)
    {
        var days = new List<ReplayDay>();
        for (var i = 0; i < archives.Count; i++)
        {
            var read = TripUpdateDays.Read(schedule, archives[i], options, window, n =>
            {
                if (task is not null)
                {
                    task.Description = $"reading {Path.GetFileName(archives[i])} ({n:N0} snapshots)";
                }
            }, ct);
            log.WriteLine(
                $"{Path.GetFileName(archives[i])}: {read.Snapshots:N0} snapshots in {window}, {read.Entities:N0} trip updates, " +
                $"{read.TripsMatched:N0} trips the schedule knows, {read.TripsSkipped:N0} it does not (skipped), " +
                $"{read.Day.Replay.Samples:N0} prediction points, {read.Events:N0} observed stop events" +
                (read.Rejections.Count > 0 ? $", not used: {string.Join(", ", read.Rejections.Select(r => $"{r.Key} {r.Value:N0}"))}" : string.Empty));
            days.Add(read.Day);
            if (task is not null)
            {
                task.Value = 100.0 * (i + 1) / archives.Count;
            }
        }

        return days;
    }

    /// <summary>
    /// Checks the day sources of train and evaluate: HFP recordings or GTFS-RT archives (not both, at least one), a
    /// truth per recording, a valid window; prints the error and returns false when not.
    /// </summary>
    public static bool CheckSources(string command, FileInfo[] recordings, FileInfo[] truths, string[] archives, string? window, out PollWindow parsed)
    {
        parsed = PollWindow.All;
        if (recordings.Length == 0 && archives.Length == 0)
        {
            Console.Error.WriteLine($"fleet {command}: give recorded days: --recording FILE (HFP) or --gtfs-rt ARCHIVE (TripUpdates snapshots)");
            return false;
        }

        if (recordings.Length > 0 && archives.Length > 0)
        {
            Console.Error.WriteLine($"fleet {command}: --recording and --gtfs-rt cannot be mixed; give one kind of recorded day");
            return false;
        }

        if (truths.Length > 0 && truths.Length != recordings.Length)
        {
            Console.Error.WriteLine($"fleet {command}: {recordings.Length} recording(s) but {truths.Length} truth file(s); give one truth per recording, in the same order");
            return false;
        }

        if (window is not null && (archives.Length == 0 || !PollWindow.TryParse(window, out parsed)))
        {
            Console.Error.WriteLine(archives.Length == 0
                ? $"fleet {command}: --window applies to --gtfs-rt archives"
                : $"fleet {command}: --window '{window}' is not HH:mm-HH:mm (local time of the polls, e.g. 05:00-14:00)");
            return false;
        }

        foreach (var a in archives)
        {
            if (!File.Exists(a) && !Directory.Exists(a))
            {
                Console.Error.WriteLine($"fleet {command}: --gtfs-rt not found: {Path.GetFullPath(a)}");
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Loads the schedule: the GTFS feed, or the timetable inferred from an archive (written to a temporary folder,
    /// loaded, deleted). Prints an error and returns null when the source is missing, doubled or wrong.
    /// </summary>
    public static Schedule? LoadSchedule(string command, ScheduleSource source, TextWriter log, CancellationToken ct)
    {
        if ((source.Gtfs is null) == (source.TimetableFrom is null))
        {
            Console.Error.WriteLine($"fleet {command}: give the schedule as --gtfs FEED or --timetable-from ARCHIVE (one of them)");
            return null;
        }

        if (source.Gtfs is { } gtfs)
        {
            if (source.TimeZone is not null)
            {
                Console.Error.WriteLine($"fleet {command}: --timezone applies to --timetable-from (a GTFS feed names its own)");
                return null;
            }

            var schedule = GtfsLoader.Load(gtfs.FullName);
            log.WriteLine($"{gtfs.Name}: {schedule.Trips.Count:N0} trips, {schedule.Stops.Count:N0} stops");
            return schedule;
        }

        var archive = source.TimetableFrom!;
        if (!File.Exists(archive) && !Directory.Exists(archive))
        {
            Console.Error.WriteLine($"fleet {command}: --timetable-from not found: {Path.GetFullPath(archive)}");
            return null;
        }

        if (source.TimeZone is null)
        {
            Console.Error.WriteLine($"fleet {command}: --timetable-from needs --timezone, the agency's IANA time zone (e.g. Pacific/Auckland)");
            return null;
        }

        TimeZoneInfo zone;
        try
        {
            zone = TimeZoneInfo.FindSystemTimeZoneById(source.TimeZone);
        }
        catch (TimeZoneNotFoundException)
        {
            Console.Error.WriteLine($"fleet {command}: --timezone '{source.TimeZone}' is not a known time zone (IANA ids such as Pacific/Auckland)");
            return null;
        }

        var folder = Directory.CreateTempSubdirectory("fleet-timetable-").FullName;
        try
        {
            var inferred = Fleet.Gtfs.Realtime.TimetableInference.Write(archive, zone, folder, ct);
            var schedule = GtfsLoader.Load(folder);
            log.WriteLine(
                $"timetable inferred from {Path.GetFileName(archive)}: {inferred.Trips:N0} trips, {inferred.Stops:N0} stops, {inferred.StopTimes:N0} stop times, " +
                $"{inferred.Routes:N0} routes, recorded on {string.Join(", ", inferred.ServiceDates.Select(d => d.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)))}" +
                (inferred.Rejections.Count > 0 ? $"; not used: {string.Join(", ", inferred.Rejections.Select(r => $"{r.Key} {r.Value:N0}"))}" : string.Empty));
            return schedule;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
