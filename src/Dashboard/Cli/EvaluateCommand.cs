using System.CommandLine;
using System.Globalization;
using Fleet.Gtfs;
using Fleet.Predict;
using Fleet.Predict.Evaluation;
using Fleet.Predict.Offline;
using Spectre.Console;

namespace Fleet.Dashboard.Cli;

/// <summary><c>fleet evaluate</c>: scores the baselines and the model on recorded days by horizon bucket.</summary>
internal static class EvaluateCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var days = new DayOptions();
        var model = new Option<FileInfo>("--model") { Description = "The model written by fleet train", Required = true };
        var json = new Option<bool>("--json") { Description = "Print the scores as JSON on stdout" };
        var plot = new Option<FileInfo>("--plot") { Description = "Write an SVG plot of MAE by horizon, one line per predictor" };
        var interval = new Option<double>("--sample-interval") { Description = "Seconds of event time between two prediction points of a vehicle", DefaultValueFactory = _ => 30 };
        var cmd = new Command("evaluate", """
            Scores every predictor (schedule, delay carried forward, historical, Kalman, model) on recorded days:
            MAE, RMSE, p90 |error| and the Cal-ITP accuracy share by minutes to arrival. Error = predicted - actual.

            Example: fleet evaluate --gtfs sample-data/gtfs.zip --recording day2.hfp.gz --truth day2-truth.csv --model model.bin --plot mae.svg
                     fleet evaluate --gtfs auckland.zip --gtfs-rt tripupdates.tar.gz --window 14:00-24:00 --model model.bin --json
            """)
        {
            model, json, plot, interval,
        };
        days.AddTo(cmd);
        cmd.SetAction((parse, ct) => Task.FromResult(Run(
            days.Schedule(parse), days.Recordings(parse), days.Truths(parse), days.Archives(parse), days.Window(parse), parse.GetValue(model)!,
            parse.GetValue(json), parse.GetValue(plot), parse.GetValue(interval), ct)));
        return cmd;
    }

    private static int Run(ScheduleSource gtfs, FileInfo[] recordings, FileInfo[] truths, string[] archives, string? window, FileInfo modelFile, bool json, FileInfo? plot, double interval, CancellationToken ct)
    {
        if (!PredictionData.CheckFiles("evaluate", [gtfs.Gtfs, modelFile, .. recordings, .. truths]))
        {
            return 2;
        }

        if (!PredictionData.CheckSources("evaluate", recordings, truths, archives, window, out var pollWindow))
        {
            return 2;
        }

        ArrivalModel model;
        try
        {
            model = ArrivalModel.Load(modelFile.FullName);
        }
        catch (InvalidDataException e)
        {
            Console.Error.WriteLine($"fleet evaluate: {e.Message}");
            return 1;
        }

        var log = Console.Error;
        if (PredictionData.LoadSchedule("evaluate", gtfs, log, ct) is not { } schedule)
        {
            return 2;
        }

        var predictors = model.Bind(schedule);
        EvaluationResult result = null!;
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
                var eval = progress.AddTask("predicting");
                result = ArrivalPipeline.EvaluateDays(schedule, days, predictors, p => eval.Value = 100 * p.Fraction, ct);
                eval.Value = 100;
            });

        var (card, coverage) = (result.Scorecard, result.RangeCoverage);
        if (plot is not null)
        {
            File.WriteAllText(plot.FullName, SvgPlot.MaeByHorizon(card, "MAE by minutes to arrival"));
            log.WriteLine($"plot: {plot.FullName}");
        }

        if (json)
        {
            Console.WriteLine(result.ToJson());
            return 0;
        }

        Console.WriteLine($"model: {model.Description}");
        Console.WriteLine($"trips scored: {result.TripsScored:N0}; skipped (not in the static schedule): {result.TripsSkipped:N0}");
        Console.Write(card.ToTable());
        Console.WriteLine("share of actual arrivals inside the p10-p90 range:");
        foreach (var (name, share) in coverage)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-12}{share:0.000}"));
        }

        return 0;
    }
}
