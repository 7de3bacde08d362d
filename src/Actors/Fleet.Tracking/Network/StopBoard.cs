using Fleet.Tracking.Output;

namespace Fleet.Tracking.Network;

/// <summary>An expected arrival at a stop.</summary>
/// <param name="TripId">trip_id.</param>
/// <param name="RouteId">route_id.</param>
/// <param name="VehicleId">The vehicle, when known.</param>
/// <param name="Predicted">Predicted arrival, UTC.</param>
/// <param name="Scheduled">Scheduled arrival, UTC, when known.</param>
/// <param name="FromTripUpdate">True when the prediction came from a GTFS-RT TripUpdate, false from our predictor.</param>
public readonly record struct UpcomingArrival(string TripId, string? RouteId, string? VehicleId, DateTime Predicted, DateTime? Scheduled, bool FromTripUpdate);

/// <summary>An observed arrival at a stop: the ground truth the predictor learns from.</summary>
/// <param name="Time">Arrival time, UTC.</param>
/// <param name="TripId">trip_id.</param>
/// <param name="RouteId">route_id.</param>
/// <param name="VehicleId">The vehicle.</param>
/// <param name="DelaySeconds">Delay at arrival.</param>
/// <param name="HeadwaySeconds">Observed headway to the previous arrival of the route and direction; null for the first.</param>
public readonly record struct ObservedArrival(DateTime Time, string TripId, string? RouteId, string? VehicleId, int? DelaySeconds, int? HeadwaySeconds);

/// <summary>
/// The stop entities' state in one place: per stop, upcoming arrivals across trips (from predictions and GTFS-RT)
/// and the observed arrival history; per route, direction and stop, headways and bunching.
/// </summary>
/// <remarks>Updates come from one owner; queries may come from any thread (a lock guards the maps).</remarks>
public sealed class StopBoard
{
    /// <summary>Arrivals kept per stop in the history.</summary>
    public const int HistoryLength = 64;

    private const int LaneLength = 16;
    private readonly Lock _gate = new();
    private readonly TrackingOptions _options;
    private readonly Dictionary<string, StopRecord> _stops = new(StringComparer.Ordinal);
    private readonly HashSet<(string Follower, string Leader)> _bunched = [];

    /// <summary>Creates a board.</summary>
    public StopBoard(TrackingOptions options) => _options = options;

    /// <summary>Bunching alerts raised.</summary>
    public long BunchingAlerts { get; private set; }

    /// <summary>Upcoming arrivals at a stop, soonest first.</summary>
    public IReadOnlyList<UpcomingArrival> Upcoming(string stopId)
    {
        lock (_gate)
        {
            return _stops.TryGetValue(stopId, out var r)
                ? [.. r.Upcoming.Values.OrderBy(u => u.Predicted).ThenBy(u => u.TripId, StringComparer.Ordinal)]
                : [];
        }
    }

    /// <summary>Observed arrivals at a stop, oldest first (the last <see cref="HistoryLength"/>).</summary>
    public IReadOnlyList<ObservedArrival> History(string stopId)
    {
        lock (_gate)
        {
            return _stops.TryGetValue(stopId, out var r) ? [.. r.History] : [];
        }
    }

    internal void SetUpcoming(string stopId, string tripId, string? routeId, string? vehicleId, DateTime predicted, DateTime? scheduled, bool fromTripUpdate)
    {
        lock (_gate)
        {
            var r = Get(stopId);
            if (r.Arrived.Contains(tripId))
            {
                return;
            }

            r.Upcoming[tripId] = new UpcomingArrival(tripId, routeId, vehicleId, predicted, scheduled, fromTripUpdate);
        }
    }

    internal void OnPrediction(DerivedEvent d)
    {
        if (d.StopId is null || d.TripId is null || d.Predicted is null)
        {
            return;
        }

        SetUpcoming(d.StopId, d.TripId, d.RouteId, d.VehicleId, d.Predicted.Value, d.Scheduled, fromTripUpdate: false);
    }

    internal void OnArrival(DerivedEvent d, TrackingAggregates aggregates, ITrackingOutput output)
    {
        if (d.StopId is null || d.TripId is null)
        {
            return;
        }

        DerivedEvent? alert = null;
        int? headway = null;
        lock (_gate)
        {
            var r = Get(d.StopId);
            r.Upcoming.Remove(d.TripId);
            r.Arrived.Add(d.TripId);
            if (r.Arrived.Count > 4 * HistoryLength)
            {
                r.Arrived.Clear(); // bounded memory; only guards against late predictions for trips already gone by
            }

            // The lane of this route and direction at this stop, ordered by time (out-of-order arrivals are inserted).
            var laneKey = (d.RouteId ?? string.Empty, d.DirectionId);
            if (!r.Lanes.TryGetValue(laneKey, out var lane))
            {
                r.Lanes[laneKey] = lane = [];
            }

            var i = lane.Count;
            while (i > 0 && lane[i - 1].Time > d.Time)
            {
                i--;
            }

            lane.Insert(i, d);
            if (lane.Count > LaneLength)
            {
                lane.RemoveAt(0);
                i--;
            }

            var leader = i > 0 ? lane[i - 1] : null;
            if (leader is not null && !string.Equals(leader.TripId, d.TripId, StringComparison.Ordinal))
            {
                headway = (int)Math.Round((d.Time - leader.Time).TotalSeconds);
                var scheduled = d.ScheduledHeadwaySeconds;
                aggregates.OnHeadway(d.RouteId, d.StopId, headway.Value, scheduled);
                if (scheduled is > 0 && headway.Value < _options.BunchingFraction * scheduled.Value &&
                    _bunched.Add((d.TripId, leader.TripId!)))
                {
                    BunchingAlerts++;
                    alert = new DerivedEvent
                    {
                        Type = DerivedEventType.Alert,
                        Kind = AlertKind.Bunching,
                        Time = d.Time,
                        VehicleId = d.VehicleId,
                        TripId = d.TripId,
                        RouteId = d.RouteId,
                        DirectionId = d.DirectionId,
                        ServiceDate = d.ServiceDate,
                        StopId = d.StopId,
                        StopSequence = d.StopSequence,
                        Value = headway,
                        Other = leader.VehicleId,
                        Mode = d.Mode,
                    };
                }
            }

            r.History.Enqueue(new ObservedArrival(d.Time, d.TripId, d.RouteId, d.VehicleId, d.DelaySeconds, headway));
            if (r.History.Count > HistoryLength)
            {
                r.History.Dequeue();
            }
        }

        if (alert is not null)
        {
            aggregates.OnAlert(alert);
            output.Publish(alert);
        }
    }

    private StopRecord Get(string stopId)
    {
        if (!_stops.TryGetValue(stopId, out var r))
        {
            _stops[stopId] = r = new StopRecord();
        }

        return r;
    }

    private sealed class StopRecord
    {
        public Dictionary<string, UpcomingArrival> Upcoming { get; } = new(StringComparer.Ordinal);

        public HashSet<string> Arrived { get; } = new(StringComparer.Ordinal);

        public Queue<ObservedArrival> History { get; } = new();

        public Dictionary<(string Route, sbyte Direction), List<DerivedEvent>> Lanes { get; } = [];
    }
}
