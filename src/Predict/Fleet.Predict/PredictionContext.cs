using Fleet.Gtfs;
using Fleet.Predict.Online;

namespace Fleet.Predict;

/// <summary>
/// Everything a predictor needs to know about one vehicle on one trip at one moment: the input of every
/// <see cref="IArrivalPredictor"/>.
/// </summary>
/// <remarks>
/// <para>Filled online by the tracking vehicle entity (from its map-matched progress, the HFP delay and the shared
/// <see cref="LiveStatistics"/>), and offline by the trainer replaying a recording against the schedule. One
/// instance is meant to be reused: setting any property invalidates the cached downstream plan, and predicting
/// allocates nothing.</para>
/// <para>Progress convention: <see cref="LastStop"/> is the index (into the trip's stop times, not stop_sequence)
/// of the last stop the vehicle reached. <see cref="AtStop"/> is true while it dwells there (including at the first
/// stop before departure); otherwise it left at <see cref="LastStopDepartureUnix"/> and is on the segment to
/// <c>LastStop + 1</c>. Times are Unix seconds (UTC) of event time.</para>
/// <para>Not thread-safe: one context per vehicle (or per thread).</para>
/// </remarks>
public sealed class PredictionContext
{
    private int _stamp;
    private int _tripIndex = -1;
    private double _serviceDayStartUnix;
    private int _offsetSeconds;
    private double _nowUnix;
    private int _lastStop;
    private bool _atStop = true;
    private double _lastStopArrivalUnix = double.NaN;
    private double _lastStopDepartureUnix = double.NaN;
    private double _distanceAlongMetres = double.NaN;
    private double _delaySeconds;
    private double _delayTrend;
    private double _dwellRatio = double.NaN;

    /// <summary>Most downstream stops predicted in one call (a longer output span is filled up to this).</summary>
    public const int MaxDownstreamStops = DownstreamPlan.MaxStops;

    /// <summary>Creates a context over a schedule and the shared online statistics.</summary>
    public PredictionContext(Schedule schedule, LiveStatistics live)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(live);
        Schedule = schedule;
        Live = live;
        Plan = new DownstreamPlan();
    }

    /// <summary>The schedule the trip belongs to.</summary>
    public Schedule Schedule { get; }

    /// <summary>The shared online statistics (vehicles ahead, dwell history, headways).</summary>
    public LiveStatistics Live { get; }

    /// <summary>Index of the trip in <see cref="Schedule"/>.</summary>
    public int TripIndex { get => _tripIndex; private set => Set(ref _tripIndex, value); }

    /// <summary>Unix seconds of the service day's time origin (noon − 12 h, local).</summary>
    public double ServiceDayStartUnix { get => _serviceDayStartUnix; private set => Set(ref _serviceDayStartUnix, value); }

    /// <summary>Seconds added to the trip's stop times (frequency-based trips).</summary>
    public int OffsetSeconds { get => _offsetSeconds; private set => Set(ref _offsetSeconds, value); }

    /// <summary>The service date of the trip.</summary>
    public DateOnly ServiceDate { get; private set; }

    /// <summary>Route index of the trip.</summary>
    public int RouteIndex { get; private set; }

    /// <summary>Now (event time), Unix seconds.</summary>
    public double NowUnix { get => _nowUnix; set => Set(ref _nowUnix, value); }

    /// <summary>Index into the trip's stop times of the last stop reached (0 at the first stop before departure).</summary>
    public int LastStop { get => _lastStop; set => Set(ref _lastStop, value); }

    /// <summary>True while the vehicle is at <see cref="LastStop"/>.</summary>
    public bool AtStop { get => _atStop; set => Set(ref _atStop, value); }

    /// <summary>When the vehicle reached <see cref="LastStop"/>; NaN when unknown.</summary>
    public double LastStopArrivalUnix { get => _lastStopArrivalUnix; set => Set(ref _lastStopArrivalUnix, value); }

    /// <summary>When the vehicle left <see cref="LastStop"/>; NaN while <see cref="AtStop"/>.</summary>
    public double LastStopDepartureUnix { get => _lastStopDepartureUnix; set => Set(ref _lastStopDepartureUnix, value); }

    /// <summary>Distance along the trip's path in the schedule's metres (as <see cref="StopTime.DistanceMetres"/>); NaN when unknown.</summary>
    public double DistanceAlongMetres { get => _distanceAlongMetres; set => Set(ref _distanceAlongMetres, value); }

    /// <summary>Current delay, seconds, positive when late.</summary>
    public double DelaySeconds { get => _delaySeconds; set => Set(ref _delaySeconds, value); }

    /// <summary>How fast the delay is changing, seconds per minute (positive: losing time); 0 when unknown.</summary>
    public double DelayTrendSecondsPerMinute { get => _delayTrend; set => Set(ref _delayTrend, value); }

    /// <summary>This vehicle's recent dwell times relative to the historical dwell at the same stops (1 = typical); NaN when unknown.</summary>
    public double DwellRatio { get => _dwellRatio; set => Set(ref _dwellRatio, value); }

    /// <summary>The cached downstream plan (per-stop schedule, history, vehicles ahead).</summary>
    internal DownstreamPlan Plan { get; }

    /// <summary>Changes on every property set; the plan is rebuilt when it differs from the plan's stamp.</summary>
    internal int Stamp => _stamp;

    /// <summary>Sets the trip the vehicle runs: trip index, service date and (for frequency trips) the offset.</summary>
    public void SetTrip(int tripIndex, DateOnly serviceDate, int offsetSeconds = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(tripIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(tripIndex, Schedule.Trips.Count);
        if (tripIndex == _tripIndex && serviceDate == ServiceDate && offsetSeconds == _offsetSeconds)
        {
            return;
        }

        TripIndex = tripIndex;
        ServiceDate = serviceDate;
        OffsetSeconds = offsetSeconds;
        RouteIndex = Schedule.Trips[tripIndex].RouteIndex;
        ServiceDayStartUnix = ToUnix(Schedule.ServiceDayStartUtc(serviceDate));
    }

    /// <summary>Sets the trip from a resolved <see cref="TripInstance"/>.</summary>
    public void SetTrip(TripInstance trip) => SetTrip(trip.TripIndex, trip.ServiceDate, trip.OffsetSeconds);

    /// <summary>Unix seconds of a UTC instant.</summary>
    public static double ToUnix(DateTime utc) => (utc.ToUniversalTime() - DateTime.UnixEpoch).TotalSeconds;

    /// <summary>The UTC instant of Unix seconds.</summary>
    public static DateTime FromUnix(double unixSeconds) => DateTime.UnixEpoch.AddTicks(checked((long)Math.Round(unixSeconds * TimeSpan.TicksPerSecond)));

    /// <summary>The scheduled arrival at stop-time index <paramref name="stop"/> of the trip, Unix seconds.</summary>
    public double ScheduledArrivalUnix(int stop) =>
        ServiceDayStartUnix + OffsetSeconds + Schedule.GetStopTimes(TripIndex)[stop].Arrival.TotalSeconds;

    /// <summary>The scheduled departure from stop-time index <paramref name="stop"/>, Unix seconds.</summary>
    public double ScheduledDepartureUnix(int stop) =>
        ServiceDayStartUnix + OffsetSeconds + Schedule.GetStopTimes(TripIndex)[stop].Departure.TotalSeconds;

    private void Set<T>(ref T field, T value)
    {
        if (!EqualityComparer<T>.Default.Equals(field, value))
        {
            field = value;
            unchecked
            {
                _stamp++;
            }
        }
    }
}
