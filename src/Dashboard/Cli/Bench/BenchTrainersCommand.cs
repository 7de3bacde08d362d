using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Fleet.Gtfs;
using Fleet.Predict.Evaluation;
using Fleet.Predict.Learning;
using Fleet.Predict.Offline;
using Fleet.Simulation;

namespace Fleet.Dashboard.Cli;

/// <summary>
/// <c>fleet bench trainers</c>: the tree-trainer bake-off. Trains the arrival model with each trainer (our gbdt,
/// ML.NET's LightGBM and FastTree) on one day and scores it, beside the baselines, on another.
/// </summary>
internal static class BenchTrainersCommand
{
    private static readonly string[] s_baselines = ["schedule", "delay", "historical", "kalman"];

    /// <summary>Creates the <c>trainers</c> sub command of <c>fleet bench</c>.</summary>
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object on stdout instead of a table" };
        var city = new Option<int>("--city") { Description = "The generated city (network and timetable)", DefaultValueFactory = _ => 1 };
        var vehicles = new Option<int>("--vehicles") { Description = "Fleet size of the generated days", DefaultValueFactory = _ => 150 };
        var hours = new Option<double>("--hours") { Description = "Length of the generated days", DefaultValueFactory = _ => 3 };
        var trainSeed = new Option<ulong>("--train-seed") { Description = "The day trained on", DefaultValueFactory = _ => 1 };
        var testSeed = new Option<ulong>("--test-seed") { Description = "The day scored on", DefaultValueFactory = _ => 2 };
        var trainers = new Option<string[]>("--trainer") { Description = "Trainers to compare (default: all)", AllowMultipleArgumentsPerToken = true };
        trainers.AcceptOnlyFromAmong([.. TreeTrainers.Names]);
        var gtfs = new Option<FileInfo>("--gtfs") { Description = "With --gtfs-rt: the static schedule of the archive's trips" };
        var archive = new Option<string>("--gtfs-rt") { Description = "A recorded day of TripUpdates (folder, .zip, .tar.gz) instead of generated days: trained on --train-window, scored on --test-window" };
        var timetableFrom = new Option<string>("--timetable-from") { Description = "With --gtfs-rt, instead of --gtfs: the timetable inferred from this archive" };
        var timeZone = new Option<string>("--timezone") { Description = "With --timetable-from: the agency's IANA time zone" };
        var trainWindow = new Option<string>("--train-window") { Description = "With --gtfs-rt: polls trained on, HH:mm-HH:mm local", DefaultValueFactory = _ => "00:00-14:00" };
        var testWindow = new Option<string>("--test-window") { Description = "With --gtfs-rt: polls scored on, HH:mm-HH:mm local", DefaultValueFactory = _ => "14:00-24:00" };
        var work = new Option<DirectoryInfo>("--work") { Description = "Folder for the generated days (kept; reused when present); default a temporary folder" };
        var cmd = new Command("trainers", """
            The tree-trainer bake-off: generates two days of a city (or reuses them from --work), trains the arrival
            model with each trainer (gbdt: Fleet's own; lightgbm and fasttree: ML.NET) on the first, and scores every
            model beside the baselines on the second: MAE by minutes to arrival, training time, trees.

            With --gtfs (or --timetable-from and --timezone) and --gtfs-rt, a recorded day of TripUpdates instead:
            trained on the polls of --train-window (validated on its latest 20%), scored on those of --test-window.

            Example: fleet bench trainers --city 3 --vehicles 60 --train-seed 60616 --test-seed 60617 --json
                     fleet bench trainers --gtfs auckland.zip --gtfs-rt tripupdates.tar.gz --train-window 00:00-14:00 --test-window 14:00-24:00
            """)
        {
            json, city, vehicles, hours, trainSeed, testSeed, trainers, gtfs, timetableFrom, timeZone, archive, trainWindow, testWindow, work,
        };
        cmd.SetAction((parse, ct) =>
        {
            var chosen = parse.GetValue(trainers) is { Length: > 0 } t ? t : [.. TreeTrainers.Names];
            var json1 = parse.GetValue(json);
            if (parse.GetValue(archive) is { } a)
            {
                var source = new ScheduleSource(parse.GetValue(gtfs), parse.GetValue(timetableFrom), parse.GetValue(timeZone));
                return Task.FromResult(RunArchive(json1, source, a, parse.GetValue(trainWindow)!, parse.GetValue(testWindow)!, chosen, ct));
            }

            return Task.FromResult(Run(
                json1, parse.GetValue(city), parse.GetValue(vehicles), parse.GetValue(hours),
                parse.GetValue(trainSeed), parse.GetValue(testSeed), chosen, parse.GetValue(work), ct));
        });
        return cmd;
    }

    private static int RunArchive(bool json, ScheduleSource source, string archive, string trainWindow, string testWindow, string[] trainers, CancellationToken ct)
    {
        if (source.Gtfs is { Exists: false } missing)
        {
            Console.Error.WriteLine($"fleet bench trainers: --gtfs not found: {missing.FullName}");
            return 2;
        }

        if (!PollWindow.TryParse(trainWindow, out var trainPolls) || !PollWindow.TryParse(testWindow, out var testPolls))
        {
            Console.Error.WriteLine("fleet bench trainers: --train-window and --test-window are HH:mm-HH:mm (local time of the polls)");
            return 2;
        }

        if (!File.Exists(archive) && !Directory.Exists(archive))
        {
            Console.Error.WriteLine($"fleet bench trainers: --gtfs-rt not found: {Path.GetFullPath(archive)}");
            return 2;
        }

        if (PredictionData.LoadSchedule("bench trainers", source, json ? Console.Error : Console.Out, ct) is not { } schedule)
        {
            return 2;
        }

        var scheduleName = source.Gtfs?.Name ?? "the timetable inferred from it";
        var train = TripUpdateDays.Read(schedule, archive, new ReplayOptions(), trainPolls, null, ct);
        var test = TripUpdateDays.Read(schedule, archive, new ReplayOptions(), testPolls, null, ct);
        BenchOutput.Say(json, $"{Path.GetFileName(archive)}: trained on {trainPolls} ({train.TripsMatched} trips), scored on {testPolls} ({test.TripsMatched} trips)");
        var results = Compare(json, schedule, [train.Day], [test.Day], trainers, validateOnLatest: true, ct);
        return Report(
            json, $"{Path.GetFileName(archive)} with {scheduleName}: trained on {trainPolls}, scored on {testPolls}",
            new { archive = Path.GetFileName(archive), schedule = scheduleName, trainWindow = trainPolls.ToString(), testWindow = testPolls.ToString(), tripsTrained = train.TripsMatched, tripsScored = test.TripsMatched }, results);
    }

    private static List<(string Trainer, double Seconds, ArrivalTrainingResult Training, Scorecard Card)> Compare(
        bool json, Schedule schedule, List<ReplayDay> trainDays, List<ReplayDay> testDays, string[] trainers, bool validateOnLatest, CancellationToken ct)
    {
        var results = new List<(string Trainer, double Seconds, ArrivalTrainingResult Training, Scorecard Card)>();
        foreach (var trainer in trainers.Distinct(StringComparer.Ordinal))
        {
            BenchOutput.Say(json, $"training with {trainer}");
            var training = ArrivalPipeline.Train(schedule, trainDays, new ArrivalTrainingOptions { Trainer = trainer, ValidateOnLatest = validateOnLatest }, cancellationToken: ct);
            var (card, _) = ArrivalPipeline.Evaluate(schedule, testDays, training.Model.Bind(schedule), cancellationToken: ct);
            results.Add((trainer, training.FitSeconds, training, card));
            BenchOutput.Say(json, $"  {trainer}: {training.FitSeconds:0.0} s, {training.Model.Gbt.TreeCount} trees, held-out MAE {training.ValidationMae:0.0} s; blend {training.Model.Blend}");
        }

        return results;
    }

    private static int Report(bool json, string title, object setup, List<(string Trainer, double Seconds, ArrivalTrainingResult Training, Scorecard Card)> results)
    {
        var buckets = HorizonBucket.All;
        var baselineCard = results[0].Card;
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                setup,
                buckets = buckets.Select(b => b.Name),
                baselines = s_baselines.ToDictionary(p => p, p => buckets.Select((_, i) => Round(baselineCard.Score(p, i).Mae))),
                n = buckets.Select((_, i) => baselineCard.Score("model", i).N),
                trainers = results.ToDictionary(r => r.Trainer, r => new
                {
                    fitSeconds = Math.Round(r.Seconds, 2),
                    trees = r.Training.Model.Gbt.TreeCount,
                    nodes = r.Training.Model.Gbt.NodeCount,
                    heldOutMae = Round(r.Training.ValidationMae),
                    blend = r.Training.Model.Blend.ToString(),
                    mae = buckets.Select((_, i) => Round(r.Card.Score("model", i).Mae)),
                }),
            }));
            return 0;
        }

        var ci = CultureInfo.InvariantCulture;
        Console.WriteLine(title);
        Console.WriteLine("MAE (s)".PadRight(22) + string.Concat(buckets.Select(b => b.Name.PadLeft(8))) + "     fit s   trees");
        foreach (var p in s_baselines)
        {
            Console.WriteLine(p.PadRight(22) + string.Concat(buckets.Select((_, i) => baselineCard.Score(p, i).Mae.ToString("0.0", ci).PadLeft(8))));
        }

        foreach (var r in results)
        {
            Console.WriteLine(($"model ({r.Trainer})").PadRight(22) + string.Concat(buckets.Select((_, i) => r.Card.Score("model", i).Mae.ToString("0.0", ci).PadLeft(8))) +
                r.Seconds.ToString("0.0", ci).PadLeft(10) + r.Training.Model.Gbt.TreeCount.ToString(ci).PadLeft(8));
        }

        Console.WriteLine("n".PadRight(22) + string.Concat(buckets.Select((_, i) => baselineCard.Score("model", i).N.ToString(ci).PadLeft(8))));
        return 0;
    }

    private static int Run(bool json, int city, int vehicles, double hours, ulong trainSeed, ulong testSeed, string[] trainers, DirectoryInfo? work, CancellationToken ct)
    {
        if (trainSeed == testSeed)
        {
            Console.Error.WriteLine("fleet bench trainers: --train-seed and --test-seed must differ (a model is scored on a day it was not trained on)");
            return 2;
        }

        var root = work?.FullName ?? Directory.CreateTempSubdirectory("fleet-bench-trainers-").FullName;
        try
        {
            var folders = new List<string>();
            foreach (var seed in new[] { trainSeed, testSeed })
            {
                var options = new GenerateOptions { City = city, Seed = seed, Vehicles = vehicles, Hours = hours };
                options.Validate();
                var folder = Path.Combine(root, $"city{city}-v{vehicles}-h{hours.ToString(CultureInfo.InvariantCulture)}-s{seed}");
                if (!File.Exists(Path.Combine(folder, "truth.csv")))
                {
                    BenchOutput.Say(json, $"generating city {city}, seed {seed} into {folder}");
                    CityGenerator.Generate(options, folder);
                }

                folders.Add(folder);
            }

            var schedule = GtfsLoader.Load(Path.Combine(folders[0], "gtfs.zip"));
            List<ReplayDay> Read(string folder) => RecordedDays.ReadHfp(
                schedule, [Path.Combine(folder, "recording.hfp.gz")], [Path.Combine(folder, "truth.csv")], new ReplayOptions(), null, null, ct);
            var trainDays = Read(folders[0]);
            var testDays = Read(folders[1]);
            var results = Compare(json, schedule, trainDays, testDays, trainers, validateOnLatest: false, ct);
            return Report(
                json, string.Create(CultureInfo.InvariantCulture, $"city {city}, {vehicles} vehicles, {hours} h: trained on seed {trainSeed}, scored on seed {testSeed}"),
                new { city, vehicles, hours, trainSeed, testSeed }, results);
        }
        finally
        {
            if (work is null)
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }

    private static double Round(double v) => Math.Round(v, 2);
}
