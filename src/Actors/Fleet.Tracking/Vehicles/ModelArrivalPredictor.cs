using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Fleet.Predict;
using Fleet.Predict.Online;
using Fleet.Predict.Predictors;
using Fleet.Tracking.Output;
using Fleet.Tracking.Schedule;
using GtfsSchedule = Fleet.Gtfs.Schedule;
using PredictArrivalPredictor = Fleet.Predict.IArrivalPredictor;

namespace Fleet.Tracking.Vehicles;

/// <summary>
/// Tracking's <see cref="IArrivalPredictor"/> over a Fleet.Predict predictor (normally the trained arrival model):
/// keeps one <see cref="PredictionContext"/> per vehicle, filled from the tracker's progress, and feeds the shared
/// <see cref="LiveStatistics"/> with every observed segment running time, dwell and arrival, so the model's
/// "vehicles ahead" and headway features are live. Predictions carry the model's p10-p90 range.
/// </summary>
/// <remarks>
/// <para>The tracked trip (<see cref="TripPlan.TripId"/>) is mapped to the schedule trip with
/// <c>Schedule.TryGetTrip</c>; a plan the schedule does not know (another feed, a different stop list) falls back
/// to the delay carried forward, counted in <see cref="Fallbacks"/>.</para>
/// <para>Threading: <see cref="Predict"/> is called concurrently for different vehicles (each vehicle's context is
/// touched only by the thread that runs that vehicle); <see cref="Observe"/> is called by the engine's single
/// publishing step between prediction rounds (see <see cref="IStopObserver"/>), so what a prediction reads from
/// the statistics depends only on the input order, never on thread timing. The statistics are in event time: a
/// replay that starts over (a loop) needs a new instance.</para>
/// </remarks>
public sealed class ModelArrivalPredictor : IArrivalPredictor, IStopObserver
{
    /// <summary>The delay trend is the change of delay over about this many seconds (as in training).</summary>
    private const double TrendWindowSeconds = 120;

    /// <summary>Delay samples kept per vehicle for the trend.</summary>
    private const int TrendDepth = 32;

    private readonly GtfsSchedule _schedule;
    private readonly PredictArrivalPredictor _predictor;
    private readonly BoundProfile _profile;
    private readonly LiveStatistics _live;
    private readonly DelayCarriedForwardPredictor _fallback = new();
    private readonly BlockContinuation _continuation;
    private readonly ConcurrentDictionary<string, VehicleContext> _vehicles = new(StringComparer.Ordinal);
    private readonly ConditionalWeakTable<TripPlan, PlanInfo> _plans = [];
    private readonly Dictionary<(string Trip, DateOnly Date, string? Vehicle), TripObservations> _trips = [];
    private readonly ModelRetrainer? _retrainer;
    private readonly ConcurrentQueue<PendingSample> _captured = new();
    private readonly Dictionary<(string Trip, DateOnly Date, string? Vehicle), List<PendingSample>> _pending = [];
    private int _pendingCount;
    private long _pendingDropped;
    private long _fallbacks;
    private long _predictions;

    /// <summary>Prediction moments kept per vehicle for learning: one every this many seconds of event time (as in training).</summary>
    private const double SampleIntervalSeconds = 30;

    /// <summary>Most prediction moments waiting for their arrivals; beyond it new ones are dropped and counted.</summary>
    private const int MaxPendingSamples = 20_000;

    /// <summary>Creates the adapter over a bound predictor set; <paramref name="predictor"/> defaults to its best (the model).</summary>
    /// <param name="schedule">The schedule the tracked trips come from.</param>
    /// <param name="predictors">The predictors bound to <paramref name="schedule"/> (<c>ArrivalModel.Bind</c>).</param>
    /// <param name="predictor">Which of them to use; null for <see cref="PredictorSet.Best"/>.</param>
    /// <param name="live">The online statistics to read and feed; null for a fresh store.</param>
    /// <param name="retrainer">Continuous learning: when given, predictions use its current model, and every 30 s of event
    /// time per vehicle the model's rows are kept until the arrivals they predict are observed, then handed to it.</param>
    public ModelArrivalPredictor(GtfsSchedule schedule, PredictorSet predictors, PredictArrivalPredictor? predictor = null, LiveStatistics? live = null,
        ModelRetrainer? retrainer = null)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(predictors);
        _schedule = schedule;
        _predictor = predictor ?? predictors.Best;
        _profile = predictors.Profile;
        _live = live ?? new LiveStatistics();
        _retrainer = retrainer;
        _continuation = new BlockContinuation(schedule, predictors.Profile, (_predictor as PlanPredictor)?.Bands);
    }

    /// <summary>Name of the Fleet.Predict predictor in use (<c>model</c>, <c>kalman</c>, ...).</summary>
    public string Name => Active.Name;

    /// <summary>The continuous learner, or null.</summary>
    public ModelRetrainer? Retrainer => _retrainer;

    /// <summary>Prediction moments not kept for learning because too many were waiting for their arrivals.</summary>
    public long PendingSamplesDropped => Interlocked.Read(ref _pendingDropped);

    // The retrainer swaps its model with one reference exchange; a round reads it once.
    private PredictArrivalPredictor Active => _retrainer is { } r ? r.Current : _predictor;

    /// <summary>The online statistics this adapter feeds.</summary>
    public LiveStatistics Live => _live;

    /// <summary>Prediction rounds answered with the delay carried forward because the trip was not in the schedule.</summary>
    public long Fallbacks => Interlocked.Read(ref _fallbacks);

    /// <summary>Prediction rounds answered by the predictor.</summary>
    public long Predictions => Interlocked.Read(ref _predictions);

    /// <inheritdoc />
    public void Predict(in VehicleProgress progress, List<StopPrediction> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        var plan = progress.Plan;
        var info = _plans.GetValue(plan, p => PlanInfo.Resolve(_schedule, p));
        if (!info.Valid)
        {
            Interlocked.Increment(ref _fallbacks);
            _fallback.Predict(progress, into);
            return;
        }

        var vehicle = _vehicles.GetOrAdd(progress.VehicleId, static (_, self) => new VehicleContext(self._schedule, self._live), this);
        var ctx = vehicle.Context;
        if (!Fill(vehicle, info, progress))
        {
            return; // the trip is over
        }

        Interlocked.Increment(ref _predictions);
        var output = vehicle.Output;
        var active = Active;
        var n = active.Predict(ctx, output);
        var now = ctx.NowUnix;
        if (_retrainer is not null && active is ModelPredictor model && !(now - vehicle.LastSampleUnix < SampleIntervalSeconds))
        {
            vehicle.LastSampleUnix = now;
            Capture(model, ctx, progress, info.TripIndex);
        }

        for (var i = 0; i < n; i++)
        {
            var p = output[i];
            if (p.StopTimeIndex < progress.NextStopIndex || p.StopTimeIndex >= plan.Stops.Count)
            {
                continue; // already arrived according to the tracker (the two agree; this only guards the mapping)
            }

            // The bands are empirical percentiles of the residual; they hold the point on any sane model, but the
            // range shown must contain the prediction and cannot start in the past.
            var low = Math.Max(now, Math.Min(p.P10Unix, p.ArrivalUnix));
            var high = Math.Max(p.P90Unix, p.ArrivalUnix);
            into.Add(new StopPrediction(p.StopTimeIndex, p.Arrival, PredictionContext.FromUnix(low), PredictionContext.FromUnix(high)));
            if (p.StopTimeIndex == plan.Stops.Count - 1)
            {
                PredictNextTrip(vehicle, plan, now, p.ArrivalUnix, low, high, into);
            }
        }
    }

    /// <summary>Keeps this moment's rows until the arrivals they predict are observed (see <see cref="Observe"/>).</summary>
    private void Capture(ModelPredictor model, PredictionContext ctx, in VehicleProgress progress, int tripIndex)
    {
        var columns = ArrivalFeatures.Count;
        var features = new float[PredictionContext.MaxDownstreamStops * columns];
        var baseUnix = new double[PredictionContext.MaxDownstreamStops];
        var scale = new float[PredictionContext.MaxDownstreamStops];
        var n = model.CaptureRows(ctx, features, baseUnix, scale, out var first);

        // Only rows whose arrival is expected within the learned horizon (their times only grow along the trip);
        // kept in arrays of their own size, as they wait up to 30 minutes.
        var keep = 0;
        while (keep < n && baseUnix[keep] - ctx.NowUnix <= HorizonLimitSeconds)
        {
            keep++;
        }

        if (keep > 0)
        {
            _captured.Enqueue(new PendingSample((progress.Plan.TripId, progress.Plan.ServiceDate, progress.VehicleId), tripIndex, ctx.NowUnix, first, keep,
                features[..(keep * columns)], baseUnix[..keep], scale[..keep]));
        }
    }

    /// <summary>Moves the rows captured by the prediction rounds into the per-trip pending lists (publishing thread).</summary>
    private void DrainCaptured()
    {
        while (_captured.TryDequeue(out var sample))
        {
            if (_pendingCount >= MaxPendingSamples)
            {
                Interlocked.Increment(ref _pendingDropped);
                continue;
            }

            if (!_pending.TryGetValue(sample.Key, out var list))
            {
                _pending[sample.Key] = list = [];
            }

            list.Add(sample);
            _pendingCount++;
        }
    }

    /// <summary>Labels the pending rows of a trip with an observed arrival at stop-time index <paramref name="k"/>.</summary>
    private void Label((string Trip, DateOnly Date, string? Vehicle) key, int k, double arrivalUnix)
    {
        if (!_pending.TryGetValue(key, out var list))
        {
            return;
        }

        var columns = ArrivalFeatures.Count;
        for (var j = list.Count - 1; j >= 0; j--)
        {
            var s = list[j];
            var i = k - s.First;
            var horizon = arrivalUnix - s.NowUnix;
            if (i >= 0 && i < s.Count && horizon is >= 0 and <= HorizonLimitSeconds)
            {
                var target = (arrivalUnix - s.BaseUnix[i]) / s.Scale[i];
                _retrainer!.Add(s.Features.AsSpan(i * columns, columns), (float)target, s.Scale[i], (float)horizon, s.TripIndex, arrivalUnix);
            }

            // Done when its last stop is reached or its horizon has passed.
            if (i >= s.Count - 1 || horizon > HorizonLimitSeconds)
            {
                list.RemoveAt(j);
                _pendingCount--;
            }
        }

        if (list.Count == 0)
        {
            _pending.Remove(key);
        }
    }

    private void ForgetPending((string Trip, DateOnly Date, string? Vehicle) key)
    {
        if (_pending.Remove(key, out var list))
        {
            _pendingCount -= list.Count;
        }
    }

    /// <summary>Rows are learned up to this horizon (as in training: 30 minutes).</summary>
    private const double HorizonLimitSeconds = 1800;

    /// <summary>
    /// The stops of the block's next trip, from the predicted end of this one (see <see cref="BlockContinuation"/>);
    /// nothing when the block is unknown, this is its last trip, or the next trip does not map onto the schedule.
    /// </summary>
    private void PredictNextTrip(VehicleContext vehicle, TripPlan plan, double now, double end, double endLow, double endHigh, List<StopPrediction> into)
    {
        if (plan.NextInBlock is not { } next)
        {
            return;
        }

        var info = _plans.GetValue(next, p => PlanInfo.Resolve(_schedule, p));
        if (!info.Valid || info.OffsetSeconds != 0)
        {
            return;
        }

        var output = vehicle.NextTripOutput;
        var n = _continuation.Predict(info.TripIndex, next.ServiceDate, now, end, endLow, endHigh, output);
        for (var i = 0; i < n; i++)
        {
            var p = output[i];
            into.Add(new StopPrediction(p.StopTimeIndex, p.Arrival, PredictionContext.FromUnix(p.P10Unix), PredictionContext.FromUnix(p.P90Unix)) { Trip = next });
        }
    }

    /// <inheritdoc />
    public void Observe(DerivedEvent derived)
    {
        ArgumentNullException.ThrowIfNull(derived);
        if (derived.TripId is null || derived.ServiceDate is not { } date)
        {
            return;
        }

        var key = (derived.TripId, date, derived.VehicleId);
        if (_retrainer is not null)
        {
            // Learning bookkeeping on the publishing thread; the retrainer itself never waits for training.
            DrainCaptured();
            _retrainer.OnEventTime(PredictionContext.ToUnix(derived.Time));
        }

        if (derived.Type == DerivedEventType.TripEnded)
        {
            _trips.Remove(key);
            ForgetPending(key);
            return;
        }

        if (derived.Type is not (DerivedEventType.Arrival or DerivedEventType.Departure) || derived.StopSequence < 0 ||
            !_schedule.TryGetTrip(derived.TripId, out var tripIndex))
        {
            return;
        }

        var k = _schedule.FindStopSequence(tripIndex, derived.StopSequence);
        if (k < 0)
        {
            return;
        }

        var times = _schedule.GetStopTimes(tripIndex);
        if (!_trips.TryGetValue(key, out var trip))
        {
            _trips[key] = trip = new TripObservations(times.Length);
        }

        var t = PredictionContext.ToUnix(derived.Time);
        var stop = times[k].StopIndex;
        if (derived.Type == DerivedEventType.Arrival)
        {
            trip.Arrival[k] = t;
            if (_retrainer is not null)
            {
                Label(key, k, t);
            }

            _live.ObserveArrival(stop, _schedule.Trips[tripIndex].RouteIndex, t);
            if (k > 0 && !double.IsNaN(trip.Departure[k - 1]))
            {
                _live.ObserveTravel(times[k - 1].StopIndex, stop, t, t - trip.Departure[k - 1]);
            }
        }
        else
        {
            trip.Departure[k] = t;
            if (k > 0 && k < times.Length - 1 && !double.IsNaN(trip.Arrival[k]))
            {
                _live.ObserveDwell(stop, t, t - trip.Arrival[k]);
            }

            if (k == times.Length - 1)
            {
                _trips.Remove(key);
            }
        }
    }

    /// <summary>Fills the vehicle's context the way the trainer does offline (OfflineReplay); false when the trip is over.</summary>
    private bool Fill(VehicleContext vehicle, PlanInfo info, in VehicleProgress progress)
    {
        var ctx = vehicle.Context;
        var plan = progress.Plan;
        var n = plan.Stops.Count;
        var now = PredictionContext.ToUnix(progress.Time);
        if (!ReferenceEquals(vehicle.Plan, plan))
        {
            vehicle.Plan = plan;
            vehicle.TrendCount = 0;
        }

        var arrivals = progress.Arrivals.Span;
        var departures = progress.Departures.Span;
        int last;
        bool atStop;
        double lastArrival, lastDeparture;
        if (arrivals.Length == n && departures.Length == n)
        {
            last = 0;
            for (var k = n - 1; k >= 0; k--)
            {
                if (arrivals[k] != 0)
                {
                    last = k;
                    break;
                }
            }

            atStop = departures[last] == 0 || departures[last] > progress.Time.Ticks;
            lastArrival = arrivals[last] != 0 && !(last == 0 && atStop) ? Unix(arrivals[last]) : double.NaN;
            lastDeparture = atStop ? double.NaN : Unix(departures[last]);
        }
        else
        {
            // No stop times from the caller: the next stop is all that is known.
            last = Math.Max(0, progress.NextStopIndex - 1);
            atStop = progress.NextStopIndex == 0;
            lastArrival = double.NaN;
            lastDeparture = double.NaN;
        }

        if (last >= n - 1)
        {
            return false;
        }

        ctx.SetTrip(info.TripIndex, plan.ServiceDate, info.OffsetSeconds);
        ctx.NowUnix = now;
        ctx.LastStop = last;
        ctx.AtStop = atStop;
        ctx.LastStopArrivalUnix = lastArrival;
        ctx.LastStopDepartureUnix = lastDeparture;
        ctx.DistanceAlongMetres = progress.HasPosition ? progress.AlongMetres : double.NaN;
        ctx.DelaySeconds = progress.DelaySeconds;
        ctx.DelayTrendSecondsPerMinute = vehicle.Trend(now, progress.DelaySeconds);

        // This vehicle's last few dwells against the historical dwell at the same stops.
        double actualDwell = 0, historicalDwell = 0;
        var seen = 0;
        if (arrivals.Length == n && departures.Length == n)
        {
            var times = _schedule.GetStopTimes(info.TripIndex);
            for (var k = last - (atStop ? 1 : 0); k >= 1 && seen < 3; k--)
            {
                if (arrivals[k] == 0 || departures[k] == 0)
                {
                    continue;
                }

                var a = Unix(arrivals[k]);
                var hist = _profile.Dwell(times[k].StopIndex, a - ctx.ServiceDayStartUnix);
                if (!hist.HasValue)
                {
                    continue;
                }

                actualDwell += Unix(departures[k]) - a;
                historicalDwell += hist.Mean;
                seen++;
            }
        }

        ctx.DwellRatio = historicalDwell > 1 ? actualDwell / historicalDwell : double.NaN;
        return true;
    }

    private static double Unix(long ticks) => (ticks - DateTime.UnixEpoch.Ticks) / (double)TimeSpan.TicksPerSecond;

    /// <summary>How a plan maps onto the schedule: its trip index and (frequency trips) offset.</summary>
    private sealed class PlanInfo
    {
        private static readonly PlanInfo s_invalid = new(-1, 0);

        private PlanInfo(int tripIndex, int offsetSeconds)
        {
            TripIndex = tripIndex;
            OffsetSeconds = offsetSeconds;
        }

        public int TripIndex { get; }

        public int OffsetSeconds { get; }

        public bool Valid => TripIndex >= 0;

        public static PlanInfo Resolve(GtfsSchedule schedule, TripPlan plan)
        {
            if (!schedule.TryGetTrip(plan.TripId, out var trip))
            {
                return s_invalid;
            }

            var times = schedule.GetStopTimes(trip);
            if (times.Length != plan.Stops.Count || times.Length < 2)
            {
                return s_invalid;
            }

            for (var i = 0; i < times.Length; i++)
            {
                if (times[i].Sequence != plan.Stops[i].Sequence)
                {
                    return s_invalid;
                }
            }

            var origin = schedule.ServiceDayStartUtc(plan.ServiceDate);
            var offset = (int)Math.Round((plan.Stops[0].Departure - origin).TotalSeconds - times[0].Departure.TotalSeconds);
            return new PlanInfo(trip, offset);
        }
    }

    /// <summary>One vehicle's reusable context, output buffer and recent delays. Touched by the vehicle's thread only.</summary>
    private sealed class VehicleContext(GtfsSchedule schedule, LiveStatistics live)
    {
        private readonly double[] _trendTime = new double[TrendDepth];
        private readonly double[] _trendDelay = new double[TrendDepth];
        private int _trendNext;

        public PredictionContext Context { get; } = new(schedule, live);

        public ArrivalPrediction[] Output { get; } = new ArrivalPrediction[PredictionContext.MaxDownstreamStops];

        public ArrivalPrediction[] NextTripOutput { get; } = new ArrivalPrediction[PredictionContext.MaxDownstreamStops];

        public TripPlan? Plan { get; set; }

        public double LastSampleUnix { get; set; } = double.NegativeInfinity;

        public int TrendCount { get; set; }

        /// <summary>Records (now, delay) and returns the change of delay per minute over about the trend window.</summary>
        public double Trend(double now, double delay)
        {
            // The oldest sample at least the window old, else the oldest kept (as the trainer does).
            double t0 = double.NaN, d0 = 0;
            for (var i = 1; i <= TrendCount; i++)
            {
                var j = (_trendNext - i + TrendDepth) % TrendDepth;
                t0 = _trendTime[j];
                d0 = _trendDelay[j];
                if (t0 <= now - TrendWindowSeconds)
                {
                    break;
                }
            }

            _trendTime[_trendNext] = now;
            _trendDelay[_trendNext] = delay;
            _trendNext = (_trendNext + 1) % TrendDepth;
            TrendCount = Math.Min(TrendCount + 1, TrendDepth);
            return !double.IsNaN(t0) && now - t0 >= 20 ? (delay - d0) / ((now - t0) / 60.0) : 0;
        }
    }

    /// <summary>One prediction moment's rows, waiting for the arrivals they predict.</summary>
    private sealed record PendingSample(
        (string Trip, DateOnly Date, string? Vehicle) Key, int TripIndex, double NowUnix, int First, int Count,
        float[] Features, double[] BaseUnix, float[] Scale);

    /// <summary>Observed arrival and departure per stop of one running trip (Unix seconds, NaN until seen).</summary>
    private sealed class TripObservations
    {
        public TripObservations(int stops)
        {
            Arrival = new double[stops];
            Departure = new double[stops];
            Array.Fill(Arrival, double.NaN);
            Array.Fill(Departure, double.NaN);
        }

        public double[] Arrival { get; }

        public double[] Departure { get; }
    }
}
