using System.CommandLine;
using System.Text.Json;
using Fleet.Ingest;
using Fleet.Ingest.Events;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
using Fleet.Ingest.Text;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Fleet.Dashboard.Cli;

/// <summary><c>fleet inspect FILE [--json]</c>: what a file holds.</summary>
/// <remarks>
/// Dispatches on <see cref="InputFiles.Detect"/>: recordings (HFP lines, GTFS-RT snapshots) and HFP CSV exports are
/// summarised here; GTFS static feeds and GTFS-RT files and folders go to <see cref="InspectGtfs"/>.
/// </remarks>
internal static class InspectCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var file = new Argument<FileInfo>("FILE") { Description = "A recording (.txt, .gz: HFP lines and GTFS-RT snapshots), an HFP CSV export, a GTFS zip or folder, a GTFS-RT file (.pb, .json) or a folder of GTFS-RT snapshots" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object on stdout instead of a table" };
        var gtfs = new Option<string>("--gtfs") { Description = "GTFS static feed (zip or folder) to validate GTFS-RT files against (joins trips and stops)" };
        var cmd = new Command("inspect", """
            Summarises a file: messages, time span, vehicles, events per type, rejections per reason.

            GTFS: a static feed gives counts, service dates and load errors by kind; GTFS-RT files give entity
            counts, the trip/stop join against --gtfs and validator findings (MobilityData codes).

            Example: fleet inspect sample-data/recording.hfp.gz --json
            Example: fleet inspect ../shared/data/gtfs-rt/caltrain_2023-11-07 --gtfs ../shared/data/gtfs-static/caltrain_2023-09-23_2024-06-01.zip --json
            """)
        {
            file,
            json,
            gtfs,
        };
        cmd.SetAction((parse, ct) => InspectFileAsync(parse.GetValue(file)!.FullName, parse.GetValue(gtfs), parse.GetValue(json), Console.Out, ct));
        return cmd;
    }

    /// <summary>Inspects <paramref name="path"/>, writing the summary to <paramref name="output"/>; returns the exit code.</summary>
    public static Task<int> InspectFileAsync(string path, bool json, TextWriter output, CancellationToken cancellationToken) =>
        InspectFileAsync(path, null, json, output, cancellationToken);

    /// <summary>Inspects <paramref name="path"/>, validating GTFS-RT against the static feed <paramref name="gtfs"/> when given.</summary>
    public static Task<int> InspectFileAsync(string path, string? gtfs, bool json, TextWriter output, CancellationToken cancellationToken)
    {
        if (!File.Exists(path) && !Directory.Exists(path))
        {
            Console.Error.WriteLine($"fleet inspect: file not found: {path}");
            return Task.FromResult(2);
        }

        if (InspectGtfs.TryInspect(path, gtfs, json, output, out var gtfsExit))
        {
            return Task.FromResult(gtfsExit);
        }

        if (Directory.Exists(path))
        {
            Console.Error.WriteLine($"fleet inspect: {path}: a folder that is neither a GTFS feed nor a folder of GTFS-RT snapshots");
            return Task.FromResult(2);
        }

        using var logging = CliLogging.CreateFactory(LogLevel.Warning);
        var kind = InputFiles.Detect(path);
        var result = kind switch
        {
            InputFileKind.Recording => InspectRecording(path, json, output, logging, cancellationToken),
            InputFileKind.HfpCsv => InspectHfpCsv(path, json, output, logging, cancellationToken),
            // GTFS static zips and GTFS-RT files were handled by InspectGtfs above; what remains is not readable.
            _ => Unsupported(path, kind),
        };
        return Task.FromResult(result);
    }

    // What could not be read, and why (GTFS zips and GTFS-RT files that InspectGtfs could not open come here).
    private static int Unsupported(string path, InputFileKind kind)
    {
        var why = kind switch
        {
            InputFileKind.GtfsZip => NotAGtfsZip(path),
            InputFileKind.GtfsRt => "not a GTFS-Realtime FeedMessage (the protobuf does not decode)",
            _ => $"not a file fleet reads ({kind})",
        };
        Console.Error.WriteLine($"fleet inspect: {path}: {why}");
        return 1;
    }

    private static string NotAGtfsZip(string path)
    {
        try
        {
            using var zip = System.IO.Compression.ZipFile.OpenRead(path);
            return zip.Entries.Count == 0
                ? "an empty zip, not a GTFS feed"
                : $"a zip without the GTFS files (stops.txt, routes.txt, trips.txt, stop_times.txt); it holds {string.Join(", ", zip.Entries.Take(5).Select(e => e.FullName))}";
        }
        catch (InvalidDataException ex)
        {
            return $"not a readable zip archive, so not a GTFS feed ({ex.Message})";
        }
    }

    private static int InspectRecording(string path, bool json, TextWriter output, ILoggerFactory logging, CancellationToken ct)
    {
        var stream = new HfpStream(new HfpParser(logging.CreateLogger<HfpParser>()));
        using (var reader = RecordingReader.Open(path))
        {
            while (reader.TryRead(out var line))
            {
                stream.Process(line, out _);
                if ((reader.LineNumber & 0xFFFF) == 0)
                {
                    ct.ThrowIfCancellationRequested();
                }
            }
        }

        Write(stream, "hfp", json, output, path);
        return 0;
    }

    private static int InspectHfpCsv(string path, bool json, TextWriter output, ILoggerFactory logging, CancellationToken ct)
    {
        var stream = new HfpStream(new HfpParser(logging.CreateLogger<HfpParser>()));
        using (var reader = HfpCsvReader.Open(path, stream.Parser))
        {
            foreach (var (reason, ev) in reader.ReadAll())
            {
                if (reason == RejectReason.None)
                {
                    stream.Count(in ev);
                }
            }
        }

        ct.ThrowIfCancellationRequested();
        Write(stream, "hfp-csv", json, output, path);
        return 0;
    }

    private static void Write(HfpStream s, string kind, bool json, TextWriter output, string path)
    {
        if (json)
        {
            output.WriteLine(ToJson(s, kind));
            return;
        }

        var console = CliConsole.For(output);
        var table = new Table().AddColumn("").AddColumn(new TableColumn("").RightAligned()).HideHeaders();
        table.Title = new TableTitle(Markup.Escape($"{Path.GetFileName(path)} ({kind})"));
        table.AddRow("messages", $"{s.Messages:N0}");
        table.AddRow("parsed", $"{s.Parsed:N0}");
        table.AddRow("  without position", $"{s.Parser.ParsedWithoutPosition:N0}");
        table.AddRow("rejected", $"{s.Rejections.Total:N0}");
        foreach (var (reason, n) in s.Rejections.NonZero())
        {
            table.AddRow($"  {reason}", $"{n:N0}");
        }

        table.AddRow("vehicles", $"{s.Vehicles:N0}");
        foreach (var type in HfpEventTypes.All)
        {
            if (s.EventsOfType(type) is var n and > 0)
            {
                table.AddRow($"  {HfpEventTypes.Name(type)}", $"{n:N0}");
            }
        }

        if (s.GtfsRtSnapshots > 0)
        {
            table.AddRow("GTFS-RT snapshots", $"{s.GtfsRtSnapshots:N0}");
        }

        table.AddRow("first", s.First is { } f ? Iso8601.ToIsoString(f) : "-");
        table.AddRow("last", s.Last is { } l ? Iso8601.ToIsoString(l) : "-");
        if (s.First is { } a && s.Last is { } b)
        {
            table.AddRow("span", (b - a).ToString("c", System.Globalization.CultureInfo.InvariantCulture));
        }

        console.Write(table);
    }

    /// <summary>
    /// The <c>--json</c> object: <c>{"kind","messages","parsed","rejected":{reason:n},"vehicles","eventTypes":{type:n},
    /// "first","last"}</c>, plus <c>"noPosition"</c> and, when present, <c>"gtfsRtSnapshots"</c>.
    /// </summary>
    public static string ToJson(HfpStream s, string kind)
    {
        ArgumentNullException.ThrowIfNull(s);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("kind", kind);
            w.WriteNumber("messages", s.Messages);
            w.WriteNumber("parsed", s.Parsed);
            w.WriteStartObject("rejected");
            foreach (var (reason, n) in s.Rejections.NonZero())
            {
                w.WriteNumber(reason.ToString(), n);
            }

            w.WriteEndObject();
            w.WriteNumber("vehicles", s.Vehicles);
            w.WriteStartObject("eventTypes");
            foreach (var type in HfpEventTypes.All)
            {
                if (s.EventsOfType(type) is var n and > 0)
                {
                    w.WriteNumber(HfpEventTypes.Name(type), n);
                }
            }

            w.WriteEndObject();
            WriteTime(w, "first", s.First);
            WriteTime(w, "last", s.Last);
            w.WriteNumber("noPosition", s.Parser.ParsedWithoutPosition);
            if (s.GtfsRtSnapshots > 0)
            {
                w.WriteNumber("gtfsRtSnapshots", s.GtfsRtSnapshots);
            }

            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteTime(Utf8JsonWriter w, string name, DateTime? value)
    {
        if (value is { } v)
        {
            w.WriteString(name, Iso8601.ToIsoString(v));
        }
        else
        {
            w.WriteNull(name);
        }
    }

}
