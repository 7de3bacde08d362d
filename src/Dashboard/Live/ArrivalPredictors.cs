using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using Fleet.Dashboard.Hosting;
using Fleet.Predict.Online;
using Fleet.Predict.Predictors;
using ArrivalModel = Fleet.Predict.ArrivalModel;
using PredictorSet = Fleet.Predict.PredictorSet;
using Fleet.Tracking.Vehicles;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Live;

/// <summary>
/// What predicts arrivals for serve's tracking: the trained arrival model (<see cref="ServeOptions.ModelPath"/>,
/// bound to the served GTFS schedule) when it loads, else the delay carried forward, with a warning saying why.
/// </summary>
/// <remarks>
/// The model file is read and bound once, on first use. <see cref="Create"/> returns a fresh predictor (with fresh
/// online statistics) for each tracking run: a looping replay starts event time over and must not see the
/// previous pass's observations as the future. With <see cref="ServeOptions.RetrainEvery"/> above zero each run's
/// predictor gets a <see cref="ModelRetrainer"/> (continuous learning, starting from the file's model); /metrics shows
/// their counts and the last scores. Thread-safe.
/// </remarks>
public sealed partial class ArrivalPredictors : IMetricsContributor
{
    private readonly ServeOptions _options;
    private readonly ITransitNetwork? _network;
    private readonly ILogger _logger;
    private readonly Lazy<PredictorSet?> _set;
    private readonly ILoggerFactory? _loggerFactory;
    private readonly Lock _gate = new();
    private readonly List<ModelRetrainer> _retrainers = [];

    /// <summary>Creates the provider; nothing is loaded until <see cref="Create"/>.</summary>
    public ArrivalPredictors(ServeOptions options, ILogger<ArrivalPredictors> logger, ITransitNetwork? network = null, ILoggerFactory? loggerFactory = null)
    {
        _loggerFactory = loggerFactory;
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        _options = options;
        _network = network;
        _logger = logger;
        _set = new Lazy<PredictorSet?>(Load, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    // The loaded model's tree trainer (set by Load, before Create reads it).
    private string _trainer = Fleet.Predict.Learning.TreeTrainers.Gbdt;

    /// <summary>Which predictor tracking uses: <c>model</c>, or <c>delay</c> (the fallback).</summary>
    public string Kind => _set.Value is not null ? "model" : "delay";

    /// <summary>A new predictor for one tracking run.</summary>
    public IArrivalPredictor Create()
    {
        if (_set.Value is not { } set || _network is not GtfsNetwork gtfs)
        {
            return new DelayCarriedForwardPredictor();
        }

        ModelRetrainer? retrainer = null;
        if (_options.RetrainEvery > TimeSpan.Zero && set.Model is ModelPredictor model)
        {
            // Continuous learning grows its trees with the trainer the shipped model was trained with.
            retrainer = new ModelRetrainer(model, new RetrainingOptions { Every = _options.RetrainEvery, Trainer = _trainer }, _loggerFactory?.CreateLogger<ModelRetrainer>());
            lock (_gate)
            {
                _retrainers.Add(retrainer);
            }
        }

        return new ModelArrivalPredictor(gtfs.Schedule, set, retrainer: retrainer);
    }

    /// <summary>The retrainers of every tracking run so far (one per replay pass), oldest first.</summary>
    public IReadOnlyList<ModelRetrainer> Retrainers
    {
        get
        {
            lock (_gate)
            {
                return [.. _retrainers];
            }
        }
    }

    /// <inheritdoc />
    public void CreateInstruments(Meter meter)
    {
        ArgumentNullException.ThrowIfNull(meter);

        // Only while a retrainer runs (serve --retrain-every).
        IEnumerable<Measurement<T>> Sum<T>(Func<IReadOnlyList<ModelRetrainer>, T> read)
            where T : struct => Retrainers is { Count: > 0 } all ? [new Measurement<T>(read(all))] : [];
        meter.CreateObservableCounter("fleet_predict_retrains_total", () => Sum(all => all.Sum(r => r.Retrains)), description: "Background retrains of the arrival model that finished.");
        meter.CreateObservableCounter("fleet_predict_model_swaps_total", () => Sum(all => all.Sum(r => r.Swaps)), description: "Retrained arrival models swapped in (they scored better).");
        meter.CreateObservableCounter("fleet_predict_retrains_skipped_total", () => Sum(all => all.Sum(r => r.Skipped)), description: "Due retrains skipped (too few rows, or one still running).");
        meter.CreateObservableCounter("fleet_predict_retrain_rows_total", () => Sum(all => all.Sum(r => r.AddedRows)), description: "Labelled rows collected for retraining.");
        meter.CreateObservableCounter("fleet_predict_retrain_rows_dropped_total", () => Sum(all => all.Sum(r => r.DroppedRows)), description: "Labelled rows dropped because the retraining window was full.");
        meter.CreateObservableGauge("fleet_predict_retrain_window_rows", () => Sum(all => all[^1].WindowRows), description: "Labelled rows in the current retraining window.");
        meter.CreateObservableGauge("fleet_predict_retrain_validation_mae_seconds", () =>
            Retrainers.Select(r => r.Last).LastOrDefault(l => l is not null) is { } last
                ? [new Measurement<double>(last.OldMae, new KeyValuePair<string, object?>("model", "current")),
                    new Measurement<double>(last.NewMae, new KeyValuePair<string, object?>("model", "new"))]
                : Array.Empty<Measurement<double>>(),
            description: "Held-out MAE of the last retrain's current and new model.");
    }

    private PredictorSet? Load()
    {
        if (_options.ModelPath is not { } path)
        {
            return null;
        }

        if (_network is not GtfsNetwork gtfs)
        {
            LogModelUnused(path, "no GTFS schedule is loaded (--gtfs)");
            return null;
        }

        try
        {
            var model = ArrivalModel.Load(path);
            var set = model.Bind(gtfs.Schedule);
            if (set.Model is null)
            {
                LogModelUnused(path, "the file holds no tree model");
                return null;
            }

            LogModelLoaded(path, model.Description);
            _trainer = model.Trainer;
            return set;
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException)
        {
            LogModelUnused(path, ex.Message);
            return null;
        }
    }

    [LoggerMessage(EventId = 5030, Level = LogLevel.Information, Message = "Arrival predictions: model {Path} ({Description})")]
    private partial void LogModelLoaded(string path, string description);

    [LoggerMessage(EventId = 5031, Level = LogLevel.Warning,
        Message = "Arrival model {Path} not used ({Reason}); predicting with the delay carried forward instead")]
    private partial void LogModelUnused(string path, string reason);
}
