using Fleet.Gtfs;
using Fleet.Predict.Online;

namespace Fleet.Predict;

/// <summary>
/// Arrivals at the stops of a vehicle's next trip (the next trip of its GTFS block), from the predicted end of the
/// current one: the vehicle lays over at least <see cref="MinimumLayoverSeconds"/> at the terminal and never leaves
/// before the next trip's scheduled departure; from there each segment takes its historical running time (the
/// timetable's where history is missing) plus the historical dwell at the stops in between.
/// </summary>
/// <remarks>
/// <para>The range carries the current trip's uncertainty forward: the earliest departure follows from the end's p10,
/// the latest from its p90 (each clamped to the scheduled departure), and each stop adds the predictor's band for
/// its horizon. A late vehicle's delay is absorbed by the scheduled layover, as it is on the street.</para>
/// <para>Immutable; thread-safe.</para>
/// </remarks>
public sealed class BlockContinuation
{
    /// <summary>The shortest turnaround at a terminal by default: 2 minutes.</summary>
    public const double DefaultMinimumLayoverSeconds = 120;

    private readonly Schedule _schedule;
    private readonly BoundProfile _profile;
    private readonly ResidualBands _bands;

    /// <summary>Creates the continuation over a schedule, its bound profile and the bands of the predictor in use.</summary>
    public BlockContinuation(Schedule schedule, BoundProfile profile, ResidualBands? bands = null, double minimumLayoverSeconds = DefaultMinimumLayoverSeconds)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentOutOfRangeException.ThrowIfNegative(minimumLayoverSeconds);
        _schedule = schedule;
        _profile = profile;
        _bands = bands ?? ResidualBands.Default;
        MinimumLayoverSeconds = minimumLayoverSeconds;
    }

    /// <summary>The shortest time between the end of one trip and the start of the next.</summary>
    public double MinimumLayoverSeconds { get; }

    /// <summary>
    /// Predicts every stop of <paramref name="nextTrip"/> on <paramref name="serviceDate"/> (stop-time order, at most
    /// the output's length) from the current trip's predicted end and its range (Unix seconds); returns the count.
    /// The first stop's time is the predicted departure.
    /// </summary>
    public int Predict(int nextTrip, DateOnly serviceDate, double nowUnix, double endUnix, double endLowUnix, double endHighUnix,
        Span<ArrivalPrediction> output)
    {
        var times = _schedule.GetStopTimes(nextTrip);
        var n = Math.Min(times.Length, output.Length);
        if (n == 0)
        {
            return 0;
        }

        var origin = PredictionContext.ToUnix(_schedule.ServiceDayStartUtc(serviceDate));
        var scheduled = origin + times[0].Departure.TotalSeconds;
        var departure = Math.Max(scheduled, endUnix + MinimumLayoverSeconds);
        var earliest = Math.Max(scheduled, Math.Min(endLowUnix, endUnix) + MinimumLayoverSeconds);
        var latest = Math.Max(scheduled, Math.Max(endHighUnix, endUnix) + MinimumLayoverSeconds);
        var secondsOfDay = departure - origin;
        var run = 0.0;
        for (var k = 0; k < n; k++)
        {
            if (k > 0)
            {
                var from = times[k - 1];
                var to = times[k];
                var travel = _profile.Travel(from.StopIndex, to.StopIndex, secondsOfDay + run);
                run += travel.HasValue ? travel.Mean : Math.Max(0, to.Arrival.TotalSeconds - from.Departure.TotalSeconds);
                if (k > 1)
                {
                    var dwell = _profile.Dwell(from.StopIndex, secondsOfDay + run);
                    run += dwell.HasValue ? dwell.Mean : Math.Max(0, from.Departure.TotalSeconds - from.Arrival.TotalSeconds);
                }
            }

            var arrival = departure + run;
            var (lo, hi) = _bands.At(arrival - nowUnix);
            var low = Math.Max(scheduled, Math.Min(arrival, earliest + run + lo)); // never before the trip may leave
            var high = Math.Max(arrival, latest + run + hi);
            output[k] = new ArrivalPrediction(k, times[k].StopIndex, arrival, low, high);
        }

        return n;
    }
}
