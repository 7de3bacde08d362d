using System.Diagnostics;
using Fleet.Predict.Online;

namespace Fleet.Predict;

/// <summary>
/// Per downstream stop of a context's trip: schedule, history, the vehicles ahead, and cumulative remaining times
/// under each baseline. Built once per context state and shared by every predictor and the feature extractor.
/// </summary>
/// <remarks>
/// Row <c>i</c> is stop-time index <c>First + i</c>. Segment <c>i</c> runs from stop <c>First + i − 1</c> to stop
/// <c>First + i</c>; the first one is partly done (<see cref="FirstSegmentDone"/>). Cumulative times are from now to
/// the arrival at the row's stop, including dwells at the stops in between. Owned by one context; not thread-safe.
/// </remarks>
internal sealed class DownstreamPlan
{
    /// <summary>Most downstream stops planned (and predicted) at once.</summary>
    public const int MaxStops = 80;

    /// <summary>Recent vehicles older than this are ignored.</summary>
    public const double RecentMaxAgeSeconds = 1800;

    private int _stamp = -1;
    private BoundProfile? _profile;

    public int First;
    public int Count;
    public double Now;
    public double SecondsOfDay;
    public double FirstSegmentDone;
    public double ElapsedSinceLastStop;
    public double InitialWait; // remaining dwell at the current stop before the first segment
    public double HeadwaySeconds;
    public int StopIndexOfLast;

    public readonly int[] StopIndex = new int[MaxStops];
    public readonly double[] SchedArrival = new double[MaxStops];
    public readonly double[] DistanceRemaining = new double[MaxStops];
    public readonly double[] HistSegment = new double[MaxStops];
    public readonly double[] HistDwell = new double[MaxStops];
    public readonly double[] KalmanSegment = new double[MaxStops];
    public readonly double[] RecentSegment = new double[MaxStops]; // NaN without a recent vehicle
    public readonly double[] RecentAge = new double[MaxStops];
    public readonly double[] RecentDwell = new double[MaxStops];
    public readonly double[] CumHist = new double[MaxStops];
    public readonly double[] CumKalman = new double[MaxStops];
    public readonly double[] CumRecent = new double[MaxStops];
    public readonly double[] CumDwellHist = new double[MaxStops];
    public readonly int[] Covered = new int[MaxStops];
    public readonly double[] CumRecentAge = new double[MaxStops];
    public readonly double[] CumCoveredRecent = new double[MaxStops];
    public readonly double[] CumCoveredHist = new double[MaxStops];
    public readonly double[] CumRecentDwell = new double[MaxStops];
    public readonly double[] CumRecentDwellHist = new double[MaxStops];

    /// <summary>Builds the plan unless it is current for this context state and profile.</summary>
    public void Ensure(PredictionContext ctx, BoundProfile profile)
    {
        if (_stamp == ctx.Stamp && ReferenceEquals(_profile, profile))
        {
            return;
        }

        Build(ctx, profile);
        _stamp = ctx.Stamp;
        _profile = profile;
    }

    private void Build(PredictionContext ctx, BoundProfile profile)
    {
        Debug.Assert(ctx.TripIndex >= 0, "SetTrip before predicting");
        var times = ctx.Schedule.GetStopTimes(ctx.TripIndex);
        var live = ctx.Live;
        var last = Math.Clamp(ctx.LastStop, 0, Math.Max(0, times.Length - 1));
        var origin = ctx.ServiceDayStartUnix + ctx.OffsetSeconds;
        Now = ctx.NowUnix;
        SecondsOfDay = Now - ctx.ServiceDayStartUnix;
        First = last + 1;
        Count = Math.Clamp(times.Length - First, 0, MaxStops);
        StopIndexOfLast = times.Length > 0 ? times[last].StopIndex : -1;
        var route = ctx.RouteIndex;

        // Where the vehicle is on its first segment, and how long it will still wait at its current stop.
        InitialWait = 0;
        FirstSegmentDone = 0;
        ElapsedSinceLastStop = 0;
        if (Count == 0)
        {
            return;
        }

        if (ctx.AtStop)
        {
            ElapsedSinceLastStop = double.IsNaN(ctx.LastStopArrivalUnix) ? 0 : Math.Max(0, Now - ctx.LastStopArrivalUnix);
            if (last == 0)
            {
                // The first stop: a vehicle never leaves before the timetable.
                InitialWait = Math.Max(0, origin + times[0].Departure.TotalSeconds - Now);
            }
            else
            {
                var dwell = profile.Dwell(times[last].StopIndex, SecondsOfDay);
                var expected = dwell.HasValue ? dwell.Mean : Math.Max(0, times[last].Departure.TotalSeconds - times[last].Arrival.TotalSeconds);
                InitialWait = Math.Max(0, expected - ElapsedSinceLastStop);
            }
        }
        else
        {
            ElapsedSinceLastStop = double.IsNaN(ctx.LastStopDepartureUnix) ? 0 : Math.Max(0, Now - ctx.LastStopDepartureUnix);
        }

        var along = ctx.DistanceAlongMetres;
        double cumHist = InitialWait, cumKalman = InitialWait, cumRecent = InitialWait, cumDwell = 0;
        double coveredRecent = 0, coveredHist = 0, ageSum = 0, recentDwellSum = 0, recentDwellHist = 0;
        var covered = 0;
        for (var i = 0; i < Count; i++)
        {
            var k = First + i;
            var from = times[k - 1];
            var to = times[k];
            StopIndex[i] = to.StopIndex;
            SchedArrival[i] = origin + to.Arrival.TotalSeconds;
            DistanceRemaining[i] = double.IsNaN(along) ? double.NaN : Math.Max(0, to.DistanceMetres - along);

            var hist = profile.Travel(from.StopIndex, to.StopIndex, SecondsOfDay);
            var scheduled = Math.Max(1, to.Arrival.TotalSeconds - from.Departure.TotalSeconds);
            var h = hist.HasValue ? hist.Mean : scheduled;
            var hVar = hist.Count >= 2 && hist.Variance > 0 ? hist.Variance : (0.25 * h) * (0.25 * h);
            var recent = live.Travel(from.StopIndex, to.StopIndex, Now, RecentMaxAgeSeconds);

            // TheTransitClock-style Kalman step: combine the historical mean (variance hVar across vehicles) with the
            // last vehicle's time (whose error as a predictor of the next vehicle is the running vehicle-to-vehicle
            // variance); gain K = hVar / (hVar + v2v).
            var kal = h;
            if (recent.Count > 0)
            {
                var v2v = double.IsNaN(recent.VehicleToVehicleVariance) ? hVar : Math.Max(1, recent.VehicleToVehicleVariance);
                var gain = hVar / (hVar + v2v);
                kal = h + (gain * (recent.LastSeconds - h));
                RecentSegment[i] = recent.LastSeconds;
                RecentAge[i] = recent.LastAgeSeconds;
                covered++;
                coveredRecent += recent.LastSeconds;
                coveredHist += h;
                ageSum += recent.LastAgeSeconds;
            }
            else
            {
                RecentSegment[i] = double.NaN;
                RecentAge[i] = double.NaN;
            }

            HistSegment[i] = h;
            KalmanSegment[i] = kal;
            var r = recent.Count > 0 ? recent.LastSeconds : h;
            if (i == 0)
            {
                var done = 0.0;
                if (!ctx.AtStop)
                {
                    var length = to.DistanceMetres - from.DistanceMetres;
                    done = !double.IsNaN(along) && length > 1
                        ? Math.Clamp((along - from.DistanceMetres) / length, 0, 1)
                        : Math.Clamp(ElapsedSinceLastStop / Math.Max(1, h), 0, 0.95);
                }

                FirstSegmentDone = done;
                cumHist += h * (1 - done);
                cumKalman += kal * (1 - done);
                cumRecent += r * (1 - done);
            }
            else
            {
                // Dwell at the stop between the previous row and this one.
                var dwellStat = profile.Dwell(from.StopIndex, SecondsOfDay);
                var d = dwellStat.HasValue ? dwellStat.Mean : Math.Max(0, from.Departure.TotalSeconds - from.Arrival.TotalSeconds);
                HistDwell[i - 1] = d;
                cumDwell += d;
                var recentDwell = live.Dwell(from.StopIndex, Now, RecentMaxAgeSeconds);
                if (recentDwell.Count > 0)
                {
                    recentDwellSum += recentDwell.LastSeconds;
                    recentDwellHist += d;
                }

                cumHist += h + d;
                cumKalman += kal + d;
                cumRecent += r + (recentDwell.Count > 0 ? recentDwell.LastSeconds : d);
            }

            CumHist[i] = cumHist;
            CumKalman[i] = cumKalman;
            CumRecent[i] = cumRecent;
            CumDwellHist[i] = cumDwell;
            Covered[i] = covered;
            CumRecentAge[i] = ageSum;
            CumCoveredRecent[i] = coveredRecent;
            CumCoveredHist[i] = coveredHist;
            CumRecentDwell[i] = recentDwellSum;
            CumRecentDwellHist[i] = recentDwellHist;
        }

        HistDwell[Count - 1] = 0;
        var ahead = Count > 0 ? live.LastArrival(StopIndex[0], route, Now) : double.NaN;
        HeadwaySeconds = double.IsNaN(ahead) ? double.NaN : Now - ahead;
    }
}
