using System.CommandLine;
using Fleet.Gtfs;
using Fleet.Predict.Offline;
using Spectre.Console;

namespace Fleet.Dashboard.Cli;

/// <summary><c>fleet train</c>: trains the arrival model on recorded days.</summary>
internal static class TrainCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var days = new DayOptions();
        var output = new Option<FileInfo>("--out") { Description = "Where to write the model", Required = true };
        var trees = new Option<int>("--trees") { Description = "Maximum number of trees", DefaultValueFactory = _ => 150 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the row sampler and the validation split", DefaultValueFactory = _ => 1 };
        var trainer = new Option<string>("--trainer")
        {
            Description = "The tree trainer: gbdt (Fleet's own), lightgbm or fasttree (ML.NET); docs/PREDICTION.md compares them",
            DefaultValueFactory = _ => Fleet.Predict.Learning.TreeTrainers.Gbdt,
        };
        trainer.AcceptOnlyFromAmong([.. Fleet.Predict.Learning.TreeTrainers.Names]);
        var rate = new Option<double?>("--learning-rate") { Description = "Shrinkage per tree, over the trainer's tuned value" };
        var leaves = new Option<int?>("--leaves") { Description = "Leaves per tree, over the trainer's tuned value" };
        var minLeaf = new Option<int?>("--min-leaf") { Description = "Fewest training rows in a leaf, over the trainer's tuned value" };
        var validateLatest = new Option<bool>("--validate-on-latest")
        {
            Description = "Hold out the latest 20% of each day's time (not 20% of its trips) for early stopping and the blend: for data split by time of day",
        };
        var interval = new Option<double>("--sample-interval") { Description = "Seconds of event time between two prediction points of a vehicle", DefaultValueFactory = _ => 30 };
        var cmd = new Command("train", """
            Trains the arrival-time model (gradient-boosted trees over the Kalman baseline) on recorded days and
            writes it with the historical profile and every predictor's p10-p90 bands.

            Example: fleet train --gtfs sample-data/gtfs.zip --recording day1.hfp.gz --truth day1-truth.csv --out model.bin
                     fleet train --gtfs auckland.zip --gtfs-rt tripupdates.tar.gz --window 04:00-14:00 --out model.bin
            """)
        {
            output, trees, seed, interval, trainer, rate, leaves, minLeaf, validateLatest,
        };
        days.AddTo(cmd);
        cmd.SetAction((parse, ct) => Task.FromResult(Run(
            days.Schedule(parse), days.Recordings(parse), days.Truths(parse), days.Archives(parse), days.Window(parse), parse.GetValue(output)!,
            parse.GetValue(trees), parse.GetValue(seed), parse.GetValue(interval), parse.GetValue(trainer)!,
            new Fleet.Predict.Learning.TreeOverrides(parse.GetValue(rate), parse.GetValue(leaves), parse.GetValue(minLeaf)), parse.GetValue(validateLatest), ct)));
        return cmd;
    }

    private static int Run(ScheduleSource gtfs, FileInfo[] recordings, FileInfo[] truths, string[] archives, string? window, FileInfo output, int trees, ulong seed, double interval, string trainer, Fleet.Predict.Learning.TreeOverrides overrides, bool validateLatest, CancellationToken ct)
    {
        if (!PredictionData.CheckFiles("train", [gtfs.Gtfs, .. recordings, .. truths]))
        {
            return 2;
        }

        if (!PredictionData.CheckSources("train", recordings, truths, archives, window, out var pollWindow))
        {
            return 2;
        }

        if (overrides is { LearningRate: <= 0 or > 1 } or { Leaves: < 2 or > 1024 } or { MinRowsPerLeaf: < 1 })
        {
            Console.Error.WriteLine("fleet train: --learning-rate must be in (0, 1], --leaves 2 to 1024 and --min-leaf at least 1");
            return 2;
        }

        if (trees < 1 || interval <= 0)
        {
            Console.Error.WriteLine("fleet train: --trees must be at least 1 and --sample-interval positive");
            return 2;
        }

        var log = Console.Error;
        if (PredictionData.LoadSchedule("train", gtfs, log, ct) is not { } schedule)
        {
            return 2;
        }

        var options = new ArrivalTrainingOptions();
        options = options with { Trees = options.Trees with { MaxTrees = trees, Seed = seed }, Trainer = trainer, Overrides = overrides, ValidateOnLatest = validateLatest };
        ArrivalTrainingResult? result = null;
        try
        {
            AnsiConsole.Console = CliConsole.For(Console.Error);
            AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(progress =>
                {
                    var read = progress.AddTask("reading recordings");
                    var replayOptions = new ReplayOptions { SampleIntervalSeconds = interval };
                    var days = archives.Length > 0
                        ? PredictionData.ReadArchiveDays(schedule, archives, pollWindow, replayOptions, read, log, ct)
                        : PredictionData.ReadDays(schedule, recordings, truths, replayOptions, read, log, ct);
                    var replay = progress.AddTask("building rows");
                    var fit = progress.AddTask("training");
                    result = ArrivalPipeline.Train(schedule, days, options, p =>
                    {
                        if (p.Phase.StartsWith("replaying", StringComparison.Ordinal))
                        {
                            replay.Value = 100 * p.Fraction;
                            replay.Description = $"building rows ({p.Detail})";
                        }
                        else
                        {
                            replay.Value = 100;
                            fit.Value = 100 * p.Fraction;
                            fit.Description = $"training ({p.Detail})";
                        }
                    }, ct);
                    fit.Value = 100;
                });
        }
        catch (InvalidOperationException e)
        {
            Console.Error.WriteLine($"fleet train: {e.Message}");
            return 1;
        }
        catch (InvalidDataException e)
        {
            Console.Error.WriteLine($"fleet train: {e.Message}");
            return 1;
        }

        result!.Model.Save(output.FullName);
        var r = result;
        Console.WriteLine(
            $"model: {output.FullName} ({r.Model.Trainer}, {r.Training.BestIteration} trees{(r.Training.StoppedEarly ? ", stopped early" : string.Empty)}, " +
            $"{r.TrainRows:N0} training rows, {r.ValidationRows:N0} held-out rows)");
        Console.WriteLine($"held-out MAE: model {r.ValidationMae:0.0} s, kalman baseline {r.ValidationKalmanMae:0.0} s");
        Console.WriteLine($"blend with the baselines: {r.Model.Blend}");
        return 0;
    }
}
