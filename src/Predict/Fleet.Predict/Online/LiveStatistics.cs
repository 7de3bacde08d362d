namespace Fleet.Predict.Online;

/// <summary>What the vehicles ahead did on one segment recently.</summary>
/// <param name="LastSeconds">Running time of the most recent vehicle.</param>
/// <param name="LastAgeSeconds">How long ago (event time) that vehicle arrived at the segment's end.</param>
/// <param name="MeanSeconds">Mean running time of the recent vehicles (up to <see cref="LiveStatistics.Depth"/>) inside the age limit.</param>
/// <param name="Count">How many of them.</param>
/// <param name="VehicleToVehicleVariance">Running mean of the squared difference between consecutive vehicles' times
/// (how well "the last vehicle" predicts the next); NaN until two vehicles were seen.</param>
public readonly record struct RecentTravel(double LastSeconds, double LastAgeSeconds, double MeanSeconds, int Count, double VehicleToVehicleVariance);

/// <summary>
/// The online statistics store: recent segment running times and dwell times of every vehicle, and the last
/// arrival of each route at each stop (for headways). The tracking entities feed it with every observed stop
/// arrival and departure; predictors read it.
/// </summary>
/// <remarks>
/// Keys are schedule stop indexes and route indexes. Times are Unix seconds of event time (never wall clock), so
/// a replay gives the same numbers at any speed. Thread-safe: one lock, held for a few dictionary operations.
/// </remarks>
public sealed class LiveStatistics
{
    /// <summary>Recent observations kept per segment and stop.</summary>
    public const int Depth = 3;

    /// <summary>Weight of a new squared vehicle-to-vehicle difference in the running variance.</summary>
    private const double VarianceWeight = 0.2;

    private readonly Lock _gate = new();
    private readonly Dictionary<long, Ring> _travel = [];
    private readonly Dictionary<int, Ring> _dwell = [];
    private readonly Dictionary<long, double> _lastArrival = [];

    private sealed class Ring
    {
        public readonly double[] Time = new double[Depth];
        public readonly double[] Seconds = new double[Depth];
        public int Count;
        public int Next;
        public double Variance = double.NaN;

        public void Add(double time, double seconds)
        {
            if (Count > 0)
            {
                var prev = Seconds[(Next + Depth - 1) % Depth];
                var sq = (seconds - prev) * (seconds - prev);
                Variance = double.IsNaN(Variance) ? sq : ((1 - VarianceWeight) * Variance) + (VarianceWeight * sq);
            }

            Time[Next] = time;
            Seconds[Next] = seconds;
            Next = (Next + 1) % Depth;
            Count = Math.Min(Count + 1, Depth);
        }

        public RecentTravel Read(double now, double maxAge)
        {
            if (Count == 0)
            {
                return default;
            }

            var last = (Next + Depth - 1) % Depth;
            var age = now - Time[last];
            if (age > maxAge || age < 0)
            {
                return default;
            }

            double sum = 0;
            var n = 0;
            for (var i = 0; i < Count; i++)
            {
                var a = now - Time[i];
                if (a >= 0 && a <= maxAge)
                {
                    sum += Seconds[i];
                    n++;
                }
            }

            return new RecentTravel(Seconds[last], age, sum / n, n, Variance);
        }
    }

    /// <summary>Observations recorded so far.</summary>
    public long Observations { get; private set; }

    /// <summary>Records a running time from stop <paramref name="fromStop"/> to <paramref name="toStop"/>, ending at <paramref name="arrivalUnix"/>.</summary>
    public void ObserveTravel(int fromStop, int toStop, double arrivalUnix, double seconds)
    {
        if (!double.IsFinite(seconds) || seconds < 0)
        {
            return;
        }

        var key = HistoricalProfile.SegmentKey(fromStop, toStop);
        lock (_gate)
        {
            if (!_travel.TryGetValue(key, out var ring))
            {
                _travel[key] = ring = new Ring();
            }

            ring.Add(arrivalUnix, seconds);
            Observations++;
        }
    }

    /// <summary>Records a dwell at a stop, ending at <paramref name="departureUnix"/>.</summary>
    public void ObserveDwell(int stop, double departureUnix, double seconds)
    {
        if (!double.IsFinite(seconds) || seconds < 0)
        {
            return;
        }

        lock (_gate)
        {
            if (!_dwell.TryGetValue(stop, out var ring))
            {
                _dwell[stop] = ring = new Ring();
            }

            ring.Add(departureUnix, seconds);
            Observations++;
        }
    }

    /// <summary>Records that a vehicle of a route arrived at a stop.</summary>
    public void ObserveArrival(int stop, int route, double arrivalUnix)
    {
        var key = ((long)stop << 32) | (uint)route;
        lock (_gate)
        {
            if (!_lastArrival.TryGetValue(key, out var last) || arrivalUnix > last)
            {
                _lastArrival[key] = arrivalUnix;
            }
        }
    }

    /// <summary>Recent running times of a segment no older than <paramref name="maxAgeSeconds"/>; Count 0 when none.</summary>
    public RecentTravel Travel(int fromStop, int toStop, double nowUnix, double maxAgeSeconds)
    {
        lock (_gate)
        {
            return _travel.TryGetValue(HistoricalProfile.SegmentKey(fromStop, toStop), out var ring) ? ring.Read(nowUnix, maxAgeSeconds) : default;
        }
    }

    /// <summary>Recent dwell times at a stop no older than <paramref name="maxAgeSeconds"/>; Count 0 when none.</summary>
    public RecentTravel Dwell(int stop, double nowUnix, double maxAgeSeconds)
    {
        lock (_gate)
        {
            return _dwell.TryGetValue(stop, out var ring) ? ring.Read(nowUnix, maxAgeSeconds) : default;
        }
    }

    /// <summary>When a vehicle of <paramref name="route"/> last arrived at <paramref name="stop"/> at or before now; NaN when unknown.</summary>
    public double LastArrival(int stop, int route, double nowUnix)
    {
        lock (_gate)
        {
            return _lastArrival.TryGetValue(((long)stop << 32) | (uint)route, out var t) && t <= nowUnix ? t : double.NaN;
        }
    }
}
