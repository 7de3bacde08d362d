using System.CommandLine;
using System.Globalization;
using Fleet.Simulation;

namespace Fleet.Dashboard.Cli;

/// <summary><c>fleet generate</c>: writes a synthetic city and its recorded day.</summary>
internal static class GenerateCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var defaults = new GenerateOptions();
        var outOption = new Option<DirectoryInfo>("--out") { Description = "Folder to write gtfs.zip, recording.hfp.gz and truth.csv into (created if missing)", Required = true };
        var city = new Option<int>("--city") { Description = "City number: fixes the network and the schedule", DefaultValueFactory = _ => defaults.City };
        var seed = new Option<ulong>("--seed") { Description = "Day seed: fixes the day's dynamics (same city, another day)", DefaultValueFactory = _ => defaults.Seed };
        var routes = new Option<int>("--routes") { Description = "Number of bus routes, 1 to 400", DefaultValueFactory = _ => defaults.Routes };
        var vehicles = new Option<int>("--vehicles") { Description = "Fleet size: the buses on the road at the window's busiest moment (the headways follow from it); at least 2 per route, at most 20000", DefaultValueFactory = _ => defaults.Vehicles };
        var hours = new Option<double>("--hours") { Description = "Length of the recorded window in hours, at least 0.75, ending by midnight (the timetable runs before and after it)", DefaultValueFactory = _ => defaults.Hours };
        var date = new Option<string>("--date") { Description = "Operating day, yyyy-MM-dd (local)", DefaultValueFactory = _ => defaults.Date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) };
        var start = new Option<string>("--start") { Description = "Local start of the recorded window, HH:mm", DefaultValueFactory = _ => defaults.Start.ToString("HH:mm", CultureInfo.InvariantCulture) };
        var gzipLevel = new Option<int>("--gzip-level") { Description = "zlib level of recording.hfp.gz, 1 (fastest) to 9 (smallest); changes only the compressed bytes", DefaultValueFactory = _ => defaults.GzipLevel };
        var command = new Command("generate",
            """
            Generate a synthetic city (GTFS static zip), its recorded day (HSL HFP v2 lines plus the agency's GTFS-RT
            snapshots, gzip) and the truth (actual arrival and departure at every stop). The same arguments always give
            byte-identical files; --city fixes network and schedule, --seed the day. --gzip-level changes only the
            compressed bytes of the recording (2: fast, the default; 6: about a quarter smaller and three times slower).

            Example: fleet generate --out ./city1 --city 1 --seed 42 --routes 12 --vehicles 150 --hours 3
            """)
        {
            outOption, city, seed, routes, vehicles, hours, date, start, gzipLevel,
        };
        command.SetAction((parse, ct) =>
        {
            ct.ThrowIfCancellationRequested();
            var dateText = parse.GetValue(date)!;
            var startText = parse.GetValue(start)!;
            if (!DateOnly.TryParseExact(dateText, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
            {
                Console.Error.WriteLine($"fleet generate: --date '{dateText}' is not yyyy-MM-dd");
                return Task.FromResult(2);
            }

            if (!TimeOnly.TryParseExact(startText, "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var startTime))
            {
                Console.Error.WriteLine($"fleet generate: --start '{startText}' is not HH:mm");
                return Task.FromResult(2);
            }

            var options = new GenerateOptions
            {
                City = parse.GetValue(city),
                Seed = parse.GetValue(seed),
                Routes = parse.GetValue(routes),
                Vehicles = parse.GetValue(vehicles),
                Hours = parse.GetValue(hours),
                Date = day,
                Start = startTime,
                GzipLevel = parse.GetValue(gzipLevel),
            };
            if (Limits(options) is { } wrong)
            {
                Console.Error.WriteLine($"fleet generate: {wrong}");
                return Task.FromResult(2);
            }

            var outDir = parse.GetValue(outOption)!;
            if (File.Exists(outDir.FullName))
            {
                Console.Error.WriteLine($"fleet generate: --out {outDir.FullName} is a file; give a folder");
                return Task.FromResult(2);
            }

            try
            {
                Directory.CreateDirectory(outDir.FullName);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"fleet generate: cannot create the folder --out {outDir.FullName}: {e.Message}");
                return Task.FromResult(1);
            }

            // CPU time beside wall time: on a shared machine the wall-clock rate follows the load, the CPU per message does not.
            var cpuBefore = Environment.CpuUsage.TotalTime;
            var summary = CityGenerator.Generate(options, outDir.FullName);
            var cpu = Environment.CpuUsage.TotalTime - cpuBefore;
            var ci = CultureInfo.InvariantCulture;
            Console.WriteLine(string.Create(ci, $"city {options.City}, seed {options.Seed}: {summary.Routes} routes, {summary.Stops} stops, {summary.Trips} trips, {summary.Vehicles} vehicles"));
            Console.WriteLine(string.Create(ci, $"  {summary.GtfsPath}"));
            Console.WriteLine(string.Create(ci, $"  {summary.RecordingPath}: {summary.Lines} lines ({summary.Day.HfpMessages} HFP, {summary.GtfsRtSnapshots} GTFS-RT, {summary.Malformed.Count} malformed), {summary.Day.BufferedMessages} delivered late in bursts, received {summary.RecordedFrom:yyyy-MM-ddTHH:mm:ssZ} to {summary.RecordedUntil:yyyy-MM-ddTHH:mm:ssZ}"));
            Console.WriteLine(string.Create(ci, $"  {summary.TruthPath}"));
            Console.WriteLine(string.Create(ci, $"  dynamics: {summary.Day.Incidents} incidents, {summary.Day.Detours} detours, {summary.Day.LateStarts} late starts"));
            foreach (var (line, kind) in summary.Malformed)
            {
                Console.WriteLine(string.Create(ci, $"  malformed on purpose: line {line}: {kind}"));
            }

            Console.WriteLine(string.Create(ci, $"generated {summary.Lines} messages in {summary.Elapsed.TotalSeconds:F2} s: {summary.LinesPerSecond:F0} messages/s ({summary.UncompressedBytes / 1e6:F1} MB uncompressed, gzip level {options.GzipLevel}); CPU {cpu.TotalSeconds:F2} s, {cpu.TotalMilliseconds * 1000 / Math.Max(1, summary.Lines):F2} us per message"));
            return Task.FromResult(0);
        });
        return command;
    }

    // The generator's limits, named by the option that breaks them (GenerateOptions.Validate checks the same).
    private static string? Limits(GenerateOptions o)
    {
        var ci = CultureInfo.InvariantCulture;
        if (o.City < 0)
        {
            return string.Create(ci, $"--city {o.City}: must be 0 or more");
        }

        if (o.Routes is < 1 or > 400)
        {
            return string.Create(ci, $"--routes {o.Routes}: must be from 1 to 400");
        }

        if (o.Vehicles < o.Routes * 2 || o.Vehicles > 20_000)
        {
            return string.Create(ci, $"--vehicles {o.Vehicles}: must be at least 2 per route ({o.Routes * 2} for {o.Routes} routes) and at most 20000");
        }

        if (!(o.Hours >= 0.75))
        {
            return string.Create(ci, $"--hours {o.Hours}: must be at least 0.75");
        }

        if (o.Start.ToTimeSpan().TotalHours + o.Hours > 24)
        {
            return string.Create(ci, $"--start {o.Start:HH:mm} --hours {o.Hours}: the window must end by midnight");
        }

        if (o.GzipLevel is < 1 or > 9)
        {
            return string.Create(ci, $"--gzip-level {o.GzipLevel}: must be from 1 to 9");
        }

        try
        {
            o.Validate();
            return null;
        }
        catch (ArgumentOutOfRangeException e)
        {
            return e.Message;
        }
    }
}
