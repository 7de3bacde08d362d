using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using Fleet.Gtfs;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
using Fleet.Ingest.Text;
using Fleet.Simulation;
using Fleet.Tracking;
using Fleet.Tracking.Output;
using Fleet.Tracking.Replay;
using Fleet.Tracking.Schedule;

namespace Fleet.Dashboard.Cli;

/// <summary>
/// <c>fleet bench replay</c>: the tracking replay without predictions (parse, shard, vehicle, map-match, events out)
/// on a generated city, with the parse-only rate on the same input beside it.
/// </summary>
internal static class BenchReplayCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var cityDir = new Option<DirectoryInfo?>("--city-dir") { Description = "A folder made by fleet generate (gtfs.zip, recording.hfp.gz); generated into a temp folder when absent" };
        var vehicles = new Option<int>("--vehicles") { Description = "Fleet size of the generated city", DefaultValueFactory = _ => 1000 };
        var hours = new Option<double>("--hours") { Description = "Hours of the generated city's recorded window (from 06:00)", DefaultValueFactory = _ => 3.0 };
        var skipMinutes = new Option<int>("--skip-minutes") { Description = "Minutes of the recording skipped before the replayed slice", DefaultValueFactory = _ => 60 };
        var sliceHours = new Option<double>("--slice-hours") { Description = "Hours of the recording replayed after the skipped minutes (0 = to the end)", DefaultValueFactory = _ => 1.0 };
        var routes = new Option<int>("--routes") { Description = "Routes of the generated city", DefaultValueFactory = _ => 60 };
        var partitions = new Option<int>("--partitions") { Description = "Vehicle partitions (0 = processor count)", DefaultValueFactory = _ => 0 };
        var runs = new Option<int>("--runs") { Description = "Timed runs of each measurement (the best is reported)", DefaultValueFactory = _ => 3 };
        var command = new Command("replay",
            """
            Benchmark the tracking replay without predictions: parse, shard, vehicle, map-match, events out, over a
            generated city's recording held in memory; prints the parse-only rate on the same input beside it.

            By default the city runs from 06:00 for 3 hours and the hour from 07:00 is replayed: a 1,000-vehicle hour
            with every vehicle on the road. The first of the --runs includes JIT warm-up; the best run is reported.

            Example: fleet bench replay --vehicles 1000 --hours 3 --skip-minutes 60 --slice-hours 1
            """)
        {
            cityDir, vehicles, hours, routes, partitions, runs, skipMinutes, sliceHours,
        };
        command.SetAction((parse, ct) =>
        {
            var dir = parse.GetValue(cityDir)?.FullName;
            if (dir is null)
            {
                dir = Path.Combine(Path.GetTempPath(), $"fleet-bench-city-{parse.GetValue(vehicles)}-{parse.GetValue(hours).ToString(CultureInfo.InvariantCulture)}-{parse.GetValue(routes)}");
                if (!File.Exists(Path.Combine(dir, CityGenerator.RecordingFileName)))
                {
                    Console.WriteLine($"generating the city into {dir} ...");
                    var summary = CityGenerator.Generate(new GenerateOptions
                    {
                        Vehicles = parse.GetValue(vehicles),
                        Hours = parse.GetValue(hours),
                        Routes = parse.GetValue(routes),
                    }, dir);
                    Console.WriteLine($"  {summary.Lines:N0} lines, {summary.Vehicles} vehicles, {summary.Trips} trips in {summary.Elapsed.TotalSeconds:F1} s");
                }
            }

            var schedule = GtfsLoader.Load(Path.Combine(dir, CityGenerator.GtfsFileName));
            var recording = Decompress(Path.Combine(dir, CityGenerator.RecordingFileName), parse.GetValue(skipMinutes), parse.GetValue(sliceHours), out var slice);
            if (recording.Length == 0)
            {
                Console.Error.WriteLine($"the recording has no line in the slice {slice}; lower --skip-minutes or generate more --hours");
                return Task.FromResult(1);
            }

            Console.WriteLine($"input: {recording.Length / 1e6:F1} MB decompressed ({slice}), {schedule.Trips.Count} trips");

            var bestParse = double.MaxValue;
            var bestFull = double.MaxValue;
            long parsed = 0;
            ReplayFigures figures = default;
            long lines = 0;
            for (var run = 0; run < Math.Max(1, parse.GetValue(runs)); run++)
            {
                ct.ThrowIfCancellationRequested();
                var clock = Stopwatch.StartNew();
                var stream = new HfpStream();
                using (var reader = new RecordingReader(new MemoryStream(recording, writable: false), "bench"))
                {
                    while (reader.TryRead(out var line))
                    {
                        stream.Process(line, out _);
                    }
                }

                bestParse = Math.Min(bestParse, clock.Elapsed.TotalSeconds);
                parsed = stream.Parsed;

                clock.Restart();
                var json = new JsonLinesOutput(Stream.Null);
                var engine = new TrackingEngine(new GtfsTripCatalog(schedule), new TrackingOptions(), json, parse.GetValue(partitions))
                {
                    OverlapBatches = true,
                };
                var replay = new TrackingReplay(engine, schedule);
                replay.ReadStream(new MemoryStream(recording, writable: false), "bench", ct);
                replay.Complete();
                bestFull = Math.Min(bestFull, clock.Elapsed.TotalSeconds);
                figures = replay.Figures;
                lines = json.Lines;
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"""
                HFP events             {parsed,14:N0}
                parse only             {parsed / bestParse,14:N0} events/s  ({bestParse:F2} s)
                replay (no predictions){figures.HfpEvents / bestFull,14:N0} events/s  ({bestFull:F2} s, {Environment.ProcessorCount} cores)
                derived events written {lines,14:N0}  (arrivals, departures, alerts)
                vehicles {figures.Tracking.Vehicles}, late {figures.Tracking.Late}, duplicates {figures.Tracking.Duplicates}, unmatched journeys {figures.Tracking.UnmatchedJourneys}
                """));
            return Task.FromResult(0);
        });
        return command;
    }

    // Keeps the lines whose receive time is in [first + skip, first + skip + slice): recording lines start with a
    // fixed-width ISO-8601 UTC time, so comparing the first bytes compares times.
    internal static byte[] Decompress(string path, int skipMinutes, double sliceHours, out string slice)
    {
        using var file = File.OpenRead(path);
        using Stream input = RecordingReader.IsGzip(file) ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var memory = new MemoryStream();
        var buffer = new byte[1 << 20];
        var filled = 0;
        byte[]? from = null, to = null;
        slice = "the whole recording";
        while (true)
        {
            var read = input.Read(buffer, filled, buffer.Length - filled);
            filled += read;
            var start = 0;
            while (true)
            {
                var newline = Array.IndexOf(buffer, (byte)'\n', start, filled - start);
                if (newline < 0)
                {
                    break;
                }

                var line = buffer.AsSpan(start, newline + 1 - start);
                if (from is null && line.IndexOf((byte)' ') is var space and > 0
                    && Iso8601.TryParseUtc(line[..space], out var first))
                {
                    var begin = first.AddMinutes(skipMinutes);
                    var end = sliceHours > 0 ? begin.AddHours(sliceHours) : DateTime.MaxValue.AddDays(-1);
                    from = Format(begin);
                    to = Format(end);
                    slice = sliceHours > 0 ? $"{begin:HH:mm}-{end:HH:mm} UTC, {skipMinutes} min after the first line" : $"from {begin:HH:mm} UTC";
                }

                if (from is not null && to is not null)
                {
                    var stamp = line[..Math.Min(from.Length, line.Length)];
                    if (stamp.SequenceCompareTo(from) >= 0 && stamp.SequenceCompareTo(to) < 0)
                    {
                        memory.Write(line);
                    }
                }

                start = newline + 1;
            }

            if (read == 0)
            {
                break;
            }

            buffer.AsSpan(start, filled - start).CopyTo(buffer);
            filled -= start;
            if (filled == buffer.Length)
            {
                Array.Resize(ref buffer, buffer.Length * 2);
            }
        }

        return memory.ToArray();

        static byte[] Format(DateTime time)
        {
            Span<byte> text = stackalloc byte[40];
            return text[..Iso8601.FormatUtc(time, text)].ToArray();
        }
    }
}
