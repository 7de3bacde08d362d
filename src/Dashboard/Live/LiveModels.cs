using System.Globalization;
using Fleet.Ingest.Events;

namespace Fleet.Dashboard.Live;

/// <summary>The latest known state of one vehicle, as pushed to the map and returned by <c>/api/vehicles</c>.</summary>
/// <param name="Id">Vehicle id (<c>operator/vehicle</c> for HFP).</param>
/// <param name="RouteId">Route id, null when the vehicle is not on a journey.</param>
/// <param name="DirectionId">GTFS direction_id (0 or 1); -1 when unknown.</param>
/// <param name="TripId">Trip id: the GTFS trip_id when known, otherwise the HFP journey key
/// <c>route:direction:operatingDay:startTime</c>; null when not on a journey.</param>
/// <param name="Latitude">WGS84 latitude.</param>
/// <param name="Longitude">WGS84 longitude.</param>
/// <param name="Heading">Degrees clockwise from north; null when unknown.</param>
/// <param name="Speed">Metres per second; null when unknown.</param>
/// <param name="DelaySeconds">Schedule deviation, positive when late; null when unknown.</param>
/// <param name="Mode">Transport mode.</param>
/// <param name="NextStopId">The next (or current) stop, when the source names it.</param>
/// <param name="Updated">Event time of the last report, UTC.</param>
public sealed record VehicleState(
    string Id,
    string? RouteId,
    int DirectionId,
    string? TripId,
    double Latitude,
    double Longitude,
    double? Heading,
    double? Speed,
    int? DelaySeconds,
    TransportMode Mode,
    string? NextStopId,
    DateTime Updated)
{
    /// <summary>
    /// Projects a vehicle position event (HFP <c>vp</c> or a GTFS-RT position) onto a state; null when the event
    /// is not a position or has no coordinates.
    /// </summary>
    /// <param name="e">The normalized event.</param>
    /// <param name="timeShift">Added to the event time (a live-looking replay shifts recorded times to now).</param>
    public static VehicleState? FromEvent(in VehicleEvent e, TimeSpan timeShift = default)
    {
        if (e.Type != EventType.Vp || !e.HasPosition || string.IsNullOrEmpty(e.VehicleId))
        {
            return null;
        }

        return new VehicleState(
            e.VehicleId,
            e.RouteId,
            e.DirectionId,
            e.TripId ?? JourneyKey(e),
            e.Latitude,
            e.Longitude,
            float.IsNaN(e.Heading) ? null : e.Heading,
            float.IsNaN(e.Speed) ? null : e.Speed,
            e.DelaySeconds,
            e.Mode,
            e.StopId,
            e.EventTime + timeShift);
    }

    /// <summary>The HFP journey key <c>route:direction:operatingDay:startTime</c>, or null when incomplete.</summary>
    public static string? JourneyKey(in VehicleEvent e)
    {
        if (e.RouteId is null || e.OperatingDay is not { } day || e.StartTimeSeconds < 0)
        {
            return null;
        }

        var start = TimeSpan.FromSeconds(e.StartTimeSeconds);
        return string.Create(
            CultureInfo.InvariantCulture,
            $"{e.RouteId}:{e.DirectionId}:{day:yyyy-MM-dd}:{(int)start.TotalHours:00}{start.Minutes:00}");
    }
}

/// <summary>A predicted arrival of one trip at one stop.</summary>
/// <param name="StopId">GTFS stop_id.</param>
/// <param name="TripId">Trip id (as in <see cref="VehicleState.TripId"/>).</param>
/// <param name="VehicleId">The vehicle serving the trip, when known.</param>
/// <param name="RouteId">Route id, when known.</param>
/// <param name="StopSequence">GTFS stop_sequence; -1 when unknown.</param>
/// <param name="Predicted">Predicted arrival, UTC (the median).</param>
/// <param name="Low">Lower end of the range (10th percentile), UTC.</param>
/// <param name="High">Upper end of the range (90th percentile), UTC.</param>
/// <param name="Scheduled">Scheduled arrival, UTC, when known.</param>
/// <param name="Updated">When the prediction was made (event time), UTC.</param>
public sealed record ArrivalPrediction(
    string StopId,
    string TripId,
    string? VehicleId,
    string? RouteId,
    int StopSequence,
    DateTime Predicted,
    DateTime Low,
    DateTime High,
    DateTime? Scheduled,
    DateTime Updated)
{
    /// <summary>
    /// True when the stop belongs to the block's next trip, the one the vehicle serves after the trip it is on (listed
    /// after that trip's stops in the vehicle's next stops).
    /// </summary>
    public bool NextTrip { get; init; }

    /// <summary>True when <paramref name="other"/> says the same as this one, whenever it was made (push on change only).</summary>
    public bool SameAs(ArrivalPrediction other) =>
        other is not null && StopId == other.StopId && TripId == other.TripId && VehicleId == other.VehicleId &&
        RouteId == other.RouteId && StopSequence == other.StopSequence && Predicted == other.Predicted &&
        Low == other.Low && High == other.High && Scheduled == other.Scheduled && NextTrip == other.NextTrip;
}

/// <summary>How serious an alert is.</summary>
public enum AlertSeverity
{
    /// <summary>For information.</summary>
    Info,
    /// <summary>Something worth a look (bunching, a long stop).</summary>
    Warning,
    /// <summary>Service is affected (a vehicle far off schedule, a source down).</summary>
    Severe,
}

/// <summary>An operational alert shown in the page's alerts panel.</summary>
/// <param name="Id">Stable id; publishing the same id again replaces the alert.</param>
/// <param name="Severity">Severity.</param>
/// <param name="Text">Human-readable text.</param>
/// <param name="RouteId">The route it concerns, if any.</param>
/// <param name="StopId">The stop it concerns, if any.</param>
/// <param name="VehicleId">The vehicle it concerns, if any.</param>
/// <param name="Time">When it was raised (or cleared), UTC.</param>
/// <param name="Cleared">True when the condition is over: clients remove the alert.</param>
public sealed record LiveAlert(
    string Id,
    AlertSeverity Severity,
    string Text,
    string? RouteId,
    string? StopId,
    string? VehicleId,
    DateTime Time,
    bool Cleared = false)
{
    /// <summary>True when the alert concerns no particular route, stop or vehicle (everyone sees it).</summary>
    public bool IsGlobal => RouteId is null && StopId is null && VehicleId is null;
}

/// <summary>A geographic box, <c>minLon,minLat,maxLon,maxLat</c>.</summary>
/// <param name="MinLon">West edge.</param>
/// <param name="MinLat">South edge.</param>
/// <param name="MaxLon">East edge.</param>
/// <param name="MaxLat">North edge.</param>
public readonly record struct BoundingBox(double MinLon, double MinLat, double MaxLon, double MaxLat)
{
    /// <summary>True when the point is inside the box (edges included).</summary>
    public bool Contains(double lat, double lon) => lat >= MinLat && lat <= MaxLat && lon >= MinLon && lon <= MaxLon;

    /// <summary>Parses <c>minLon,minLat,maxLon,maxLat</c> (invariant culture).</summary>
    public static bool TryParse(string? text, out BoundingBox box, out string? error)
    {
        box = default;
        var parts = text?.Split(',') ?? [];
        if (parts.Length != 4)
        {
            error = "bbox must be 'minLon,minLat,maxLon,maxLat'";
            return false;
        }

        Span<double> v = stackalloc double[4];
        for (var i = 0; i < 4; i++)
        {
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out v[i]) || !double.IsFinite(v[i]))
            {
                error = $"bbox value {i + 1} ('{parts[i]}') is not a number";
                return false;
            }
        }

        if (v[0] < -180 || v[2] > 180 || v[1] < -90 || v[3] > 90 || v[0] > v[2] || v[1] > v[3])
        {
            error = "bbox must satisfy -180 <= minLon <= maxLon <= 180 and -90 <= minLat <= maxLat <= 90";
            return false;
        }

        box = new BoundingBox(v[0], v[1], v[2], v[3]);
        error = null;
        return true;
    }
}

/// <summary>What a hub client can subscribe to.</summary>
public enum SubscriptionKind
{
    /// <summary>Predictions (and alerts) for one stop.</summary>
    Stop,
    /// <summary>Vehicles, predictions and alerts of one route.</summary>
    Route,
    /// <summary>One vehicle, its predictions and alerts.</summary>
    Vehicle,
    /// <summary>Every vehicle inside a box (what a map sees).</summary>
    Bbox,
}

/// <summary>One subscription of a hub client.</summary>
/// <param name="Kind">What is subscribed to.</param>
/// <param name="Id">The stop, route or vehicle id; the box text for <see cref="SubscriptionKind.Bbox"/>.</param>
/// <param name="Box">The parsed box for <see cref="SubscriptionKind.Bbox"/>.</param>
public readonly record struct Subscription(SubscriptionKind Kind, string Id, BoundingBox Box)
{
    /// <summary>The longest id accepted.</summary>
    public const int MaxIdLength = 200;

    /// <summary>Parses a hub <c>Subscribe(kind, id)</c> call's arguments.</summary>
    public static bool TryParse(string? kind, string? id, out Subscription subscription, out string? error)
    {
        subscription = default;
        if (string.IsNullOrWhiteSpace(id))
        {
            error = "id must not be empty";
            return false;
        }

        if (id.Length > MaxIdLength)
        {
            error = $"id is longer than {MaxIdLength} characters";
            return false;
        }

        switch (kind?.ToUpperInvariant())
        {
            case "STOP":
                subscription = new Subscription(SubscriptionKind.Stop, id, default);
                break;
            case "ROUTE":
                subscription = new Subscription(SubscriptionKind.Route, id, default);
                break;
            case "VEHICLE":
                subscription = new Subscription(SubscriptionKind.Vehicle, id, default);
                break;
            case "BBOX":
                if (!BoundingBox.TryParse(id, out var box, out error))
                {
                    return false;
                }

                subscription = new Subscription(SubscriptionKind.Bbox, id, box);
                break;
            default:
                error = $"unknown kind '{kind}': expected stop, route, vehicle or bbox";
                return false;
        }

        error = null;
        return true;
    }
}
