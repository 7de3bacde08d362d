using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Fleet.Gtfs.Realtime;

namespace Fleet.Gtfs.Inspection;

/// <summary>What <c>fleet inspect</c> reports for a GTFS static feed.</summary>
public sealed record GtfsStaticSummary(
    int Agencies,
    int Routes,
    int Stops,
    int Trips,
    int StopTimes,
    int Shapes,
    string? ServiceStart,
    string? ServiceEnd,
    IReadOnlyDictionary<string, int> Errors)
{
    /// <summary>Always <c>gtfs</c>.</summary>
    [JsonPropertyOrder(-1)]
    public string Kind { get; } = "gtfs";
}

/// <summary>What <c>fleet inspect</c> reports for one GTFS-Realtime snapshot (or the totals of a folder).</summary>
/// <remarks>The join figures are null when no static feed was given.</remarks>
public sealed record GtfsRtSummary(
    string? File,
    int TripUpdates,
    int VehiclePositions,
    int Alerts,
    string? Timestamp,
    int? TripsMatched,
    int? TripsTotal,
    int? StopsMatched,
    int? StopsTotal,
    IReadOnlyDictionary<string, int> Findings,
    string? Error)
{
    /// <summary>Always <c>gtfs-rt</c>.</summary>
    [JsonPropertyOrder(-1)]
    public string Kind { get; } = "gtfs-rt";
}

/// <summary>What <c>fleet inspect</c> reports for a folder of GTFS-Realtime snapshots: each file, then the totals.</summary>
public sealed record GtfsRtFolderSummary(string Folder, IReadOnlyList<GtfsRtSummary> Files, GtfsRtSummary Totals)
{
    /// <summary>Always <c>gtfs-rt-folder</c>.</summary>
    [JsonPropertyOrder(-1)]
    public string Kind { get; } = "gtfs-rt-folder";
}

/// <summary>
/// The logic behind <c>fleet inspect</c> for GTFS static feeds and GTFS-Realtime files and folders; the command is
/// a thin wrapper that prints these models as JSON or text.
/// </summary>
/// <remarks>Stateless and thread-safe.</remarks>
public static partial class GtfsInspector
{
    /// <summary>File extensions treated as GTFS-Realtime snapshots.</summary>
    public static readonly IReadOnlyList<string> RealtimeExtensions = [".pb", ".pbf", ".protobuf", ".json"];

    private static readonly JsonSerializerOptions s_json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>True for a zip or folder that holds stop_times.txt.</summary>
    public static bool IsStaticFeed(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
        {
            return File.Exists(Path.Combine(path, "stop_times.txt"));
        }

        if (!File.Exists(path))
        {
            return false;
        }

        try
        {
            using var zip = System.IO.Compression.ZipFile.OpenRead(path);
            return zip.Entries.Any(e => string.Equals(e.Name, "stop_times.txt", StringComparison.OrdinalIgnoreCase));
        }
        catch (InvalidDataException)
        {
            return false;
        }
    }

    /// <summary>True for a .pb/.pbf/.protobuf file, or a .json file whose first byte is <c>{</c>.</summary>
    public static bool IsRealtimeFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var ext = Path.GetExtension(path).ToLowerInvariant();
        if (!RealtimeExtensions.Contains(ext) || !File.Exists(path))
        {
            return false;
        }

        if (ext != ".json")
        {
            return true;
        }

        Span<byte> head = stackalloc byte[64];
        using var f = File.OpenRead(path);
        var n = f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        return GtfsRtDecoder.LooksLikeJson(head[..n]);
    }

    /// <summary>True for a folder holding at least one GTFS-Realtime file.</summary>
    public static bool IsRealtimeFolder(string path) =>
        Directory.Exists(path) && RealtimeFiles(path).Any();

    /// <summary>Loads and summarises a static feed.</summary>
    /// <exception cref="GtfsFormatException">The feed cannot be loaded at all.</exception>
    public static GtfsStaticSummary InspectStatic(string path) => Summarize(GtfsLoader.Load(path));

    /// <summary>Summarises a loaded schedule (errors are the load report counted by kind).</summary>
    public static GtfsStaticSummary Summarize(Schedule schedule)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        return new GtfsStaticSummary(
            schedule.Agencies.Count,
            schedule.Routes.Count,
            schedule.Stops.Count,
            schedule.Trips.Count,
            schedule.StopTimeCount,
            schedule.ShapeIds.Count,
            schedule.ServiceStart?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            schedule.ServiceEnd?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            new SortedDictionary<string, int>(schedule.Report.CountsByKind.ToDictionary(), StringComparer.Ordinal));
    }

    /// <summary>
    /// Decodes and validates one GTFS-Realtime file (against <paramref name="schedule"/> when given). A corrupt file
    /// gives a summary with <see cref="GtfsRtSummary.Error"/> set, not an exception.
    /// </summary>
    public static GtfsRtSummary InspectRealtime(string path, Schedule? schedule, GtfsRtValidator? validator = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        TransitRealtime.FeedMessage feed;
        try
        {
            feed = GtfsRtDecoder.DecodeFile(path);
        }
        catch (GtfsRtFormatException ex)
        {
            return new GtfsRtSummary(Path.GetFileName(path), 0, 0, 0, null, null, null, null, null, new Dictionary<string, int>(), ex.Message);
        }

        return Validate(Path.GetFileName(path), feed, schedule, validator ?? new GtfsRtValidator(schedule));
    }

    /// <summary>Decodes (protobuf or JSON) and validates one snapshot of an archive; a corrupt one gives a summary with
    /// <see cref="GtfsRtSummary.Error"/> set.</summary>
    public static GtfsRtSummary InspectRealtime(GtfsRtSnapshotEntry snapshot, Schedule? schedule, GtfsRtValidator validator)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(validator);
        TransitRealtime.FeedMessage feed;
        try
        {
            feed = GtfsRtDecoder.DecodeAny(snapshot.Bytes);
        }
        catch (GtfsRtFormatException ex)
        {
            return new GtfsRtSummary(snapshot.Name, 0, 0, 0, null, null, null, null, null, new Dictionary<string, int>(), ex.Message);
        }

        return Validate(snapshot.Name, feed, schedule, validator);
    }

    private static GtfsRtSummary Validate(string name, TransitRealtime.FeedMessage feed, Schedule? schedule, GtfsRtValidator validator)
    {

        var r = validator.Validate(feed);
        var joined = schedule is not null;
        return new GtfsRtSummary(
            name,
            r.TripUpdates,
            r.VehiclePositions,
            r.Alerts,
            r.Timestamp is { } t ? Iso(t) : null,
            joined ? r.TripsMatched : null,
            joined ? r.TripsTotal : null,
            joined ? r.StopsMatched : null,
            joined ? r.StopsTotal : null,
            new SortedDictionary<string, int>(r.CountsByCode.ToDictionary(), StringComparer.Ordinal),
            null);
    }

    /// <summary>
    /// Inspects every GTFS-Realtime file of a folder in name order, plus totals. Files of one series (same name
    /// before the trailing <c>_&lt;epoch&gt;</c>) share a validator, so E018 sees the snapshots in sequence.
    /// </summary>
    public static GtfsRtFolderSummary InspectRealtimeFolder(string folder, Schedule? schedule)
    {
        ArgumentNullException.ThrowIfNull(folder);
        var validators = new Dictionary<string, GtfsRtValidator>(StringComparer.Ordinal);
        var files = new List<GtfsRtSummary>();
        foreach (var file in RealtimeFiles(folder).Order(StringComparer.Ordinal))
        {
            files.Add(InspectRealtime(file, schedule, ValidatorOf(validators, file, schedule)));
        }

        return Totals(folder, files, schedule);
    }

    /// <summary>
    /// Inspects every snapshot of a GTFS-Realtime archive (.zip or .tar.gz of protobuf or JSON snapshots) in name
    /// order, plus totals, as <see cref="InspectRealtimeFolder"/> does for a folder.
    /// </summary>
    /// <exception cref="InvalidDataException">The archive itself is truncated or corrupt.</exception>
    public static GtfsRtFolderSummary InspectRealtimeArchive(string archive, Schedule? schedule)
    {
        ArgumentNullException.ThrowIfNull(archive);
        var validators = new Dictionary<string, GtfsRtValidator>(StringComparer.Ordinal);
        var files = new List<GtfsRtSummary>();
        foreach (var snapshot in GtfsRtArchive.Read(archive))
        {
            files.Add(InspectRealtime(snapshot, schedule, ValidatorOf(validators, snapshot.Name, schedule)));
        }

        if (files.Count == 0)
        {
            throw new InvalidDataException($"{Path.GetFileName(archive)}: no GTFS-Realtime snapshots in it (entries ending {string.Join(", ", GtfsRtArchive.SnapshotExtensions)})");
        }

        return Totals(archive, files, schedule);
    }

    /// <summary>Whether <paramref name="path"/> is a .tar.gz/.tgz or a .zip of GTFS-Realtime snapshots (not a static feed).</summary>
    public static bool IsRealtimeArchive(string path) =>
        GtfsRtArchive.IsArchiveFile(path) && (!path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase) || GtfsRtArchive.IsSnapshotZip(path));

    // Snapshots of one series (same name before the trailing _<epoch>) share a validator, so E018 sees them in sequence.
    private static GtfsRtValidator ValidatorOf(Dictionary<string, GtfsRtValidator> validators, string name, Schedule? schedule)
    {
        var series = SeriesSuffix().Replace(Path.GetFileNameWithoutExtension(name), string.Empty);
        if (!validators.TryGetValue(series, out var validator))
        {
            validators[series] = validator = new GtfsRtValidator(schedule);
        }

        return validator;
    }

    private static GtfsRtFolderSummary Totals(string folder, List<GtfsRtSummary> files, Schedule? schedule)
    {

        var findings = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var f in files)
        {
            foreach (var (code, n) in f.Findings)
            {
                findings[code] = findings.GetValueOrDefault(code) + n;
            }
        }

        var errors = files.Count(f => f.Error is not null);
        var joined = schedule is not null;
        var totals = new GtfsRtSummary(
            null,
            files.Sum(f => f.TripUpdates),
            files.Sum(f => f.VehiclePositions),
            files.Sum(f => f.Alerts),
            files.Select(f => f.Timestamp).Where(t => t is not null).Max(StringComparer.Ordinal),
            joined ? files.Sum(f => f.TripsMatched ?? 0) : null,
            joined ? files.Sum(f => f.TripsTotal ?? 0) : null,
            joined ? files.Sum(f => f.StopsMatched ?? 0) : null,
            joined ? files.Sum(f => f.StopsTotal ?? 0) : null,
            findings,
            errors > 0 ? $"{errors} of {files.Count} files could not be decoded" : null);
        return new GtfsRtFolderSummary(folder, files, totals);
    }

    /// <summary>The summary as one line of JSON (camelCase names, nulls left out).</summary>
    public static string ToJson<T>(T summary) => JsonSerializer.Serialize(summary, s_json);

    /// <summary>The summary as readable <c>name: value</c> lines.</summary>
    public static string ToText(GtfsStaticSummary s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var lines = new List<string>
        {
            "kind: gtfs",
            $"agencies: {s.Agencies}",
            $"routes: {s.Routes}",
            $"stops: {s.Stops}",
            $"trips: {s.Trips}",
            $"stop times: {s.StopTimes}",
            $"shapes: {s.Shapes}",
            $"service: {s.ServiceStart ?? "-"} .. {s.ServiceEnd ?? "-"}",
            $"errors: {(s.Errors.Count == 0 ? "none" : string.Join(", ", s.Errors.Select(p => $"{p.Key} {p.Value}")))}",
        };
        return string.Join(Environment.NewLine, lines);
    }

    /// <summary>The summary as readable <c>name: value</c> lines.</summary>
    public static string ToText(GtfsRtSummary s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var lines = new List<string> { $"{s.File ?? "total"}:" };
        if (s.Error is not null)
        {
            lines.Add($"  error: {s.Error}");
        }

        lines.Add($"  trip updates {s.TripUpdates}, vehicle positions {s.VehiclePositions}, alerts {s.Alerts}");
        lines.Add($"  timestamp {s.Timestamp ?? "-"}");
        if (s.TripsTotal is not null)
        {
            lines.Add($"  trips matched {s.TripsMatched}/{s.TripsTotal}, stops matched {s.StopsMatched}/{s.StopsTotal}");
        }

        lines.Add($"  findings: {(s.Findings.Count == 0 ? "none" : string.Join(", ", s.Findings.Select(p => $"{p.Key} {p.Value}")))}");
        return string.Join(Environment.NewLine, lines);
    }

    /// <summary>The summary as readable lines: each file, then the totals.</summary>
    public static string ToText(GtfsRtFolderSummary s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return string.Join(Environment.NewLine, s.Files.Select(ToText).Append(ToText(s.Totals)));
    }

    private static IEnumerable<string> RealtimeFiles(string folder) =>
        Directory.EnumerateFiles(folder).Where(IsRealtimeFile);

    private static string Iso(DateTime utc) => utc.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    [GeneratedRegex(@"_\d{9,}(_.*)?$", RegexOptions.CultureInvariant)]
    private static partial Regex SeriesSuffix();
}
