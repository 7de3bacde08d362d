using Fleet.Dashboard.Hosting;
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
/// previous pass's observations as the future. Thread-safe.
/// </remarks>
public sealed partial class ArrivalPredictors
{
    private readonly ServeOptions _options;
    private readonly ITransitNetwork? _network;
    private readonly ILogger _logger;
    private readonly Lazy<PredictorSet?> _set;

    /// <summary>Creates the provider; nothing is loaded until <see cref="Create"/>.</summary>
    public ArrivalPredictors(ServeOptions options, ILogger<ArrivalPredictors> logger, ITransitNetwork? network = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        _options = options;
        _network = network;
        _logger = logger;
        _set = new Lazy<PredictorSet?>(Load, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>Which predictor tracking uses: <c>model</c>, or <c>delay</c> (the fallback).</summary>
    public string Kind => _set.Value is not null ? "model" : "delay";

    /// <summary>A new predictor for one tracking run.</summary>
    public IArrivalPredictor Create() =>
        _set.Value is { } set && _network is GtfsNetwork gtfs
            ? new ModelArrivalPredictor(gtfs.Schedule, set)
            : new DelayCarriedForwardPredictor();

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
