using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using Fleet.Gtfs;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
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
        var hours = new Option<double>("--hours") { Description = "Hours of the generated day", DefaultValueFactory = _ => 1.0 };
        var routes = new Option<int>("--routes") { Description = "Routes of the generated city", DefaultValueFactory = _ => 60 };
        var partitions = new Option<int>("--partitions") { Description = "Vehicle partitions (0 = processor count)", DefaultValueFactory = _ => 0 };
        var runs = new Option<int>("--runs") { Description = "Timed runs of each measurement (the best is reported)", DefaultValueFactory = _ => 3 };
        var command = new Command("replay",
            """
            Benchmark the tracking replay without predictions: parse, shard, vehicle, map-match, events out, over a
            generated city's recording held in memory; prints the parse-only rate on the same input beside it.

            Example: fleet bench replay --vehicles 1000 --hours 1
            """)
        {
            cityDir, vehicles, hours, routes, partitions, runs,
        };
        command.SetAction((parse, ct) =>
        {
            var dir = parse.GetValue(cityDir)?.FullName;
            if (dir is null)
            {
                dir = Path.Combine(Path.GetTempPath(), $"fleet-bench-city-{parse.GetValue(vehicles)}-{parse.GetValue(hours).ToString(CultureInfo.InvariantCulture)}");
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
            var recording = Decompress(Path.Combine(dir, CityGenerator.RecordingFileName));
            Console.WriteLine($"input: {recording.Length / 1e6:F1} MB decompressed, {schedule.Trips.Count} trips");

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
                var engine = new TrackingEngine(new GtfsTripCatalog(schedule), new TrackingOptions(), json, parse.GetValue(partitions));
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

    private static byte[] Decompress(string path)
    {
        using var file = File.OpenRead(path);
        using var memory = new MemoryStream();
        if (RecordingReader.IsGzip(file))
        {
            using var gzip = new GZipStream(file, CompressionMode.Decompress);
            gzip.CopyTo(memory);
        }
        else
        {
            file.CopyTo(memory);
        }

        return memory.ToArray();
    }
}
