using Fleet.Ingest.Events;
using Fleet.Tracking.Schedule;

namespace Fleet.Tracking.Tests;

/// <summary>A straight 3 km east-bound route with stops every kilometre, and helpers that drive a vehicle along it.</summary>
internal sealed class TestRoute
{
    public static readonly DateOnly Day = new(2026, 3, 2);
    public static readonly DateTime Midnight = new(2026, 3, 2, 0, 0, 0, DateTimeKind.Utc);

    public TestRoute()
    {
        // 3 km east from (60.17, 24.94): one degree of longitude there is about 55.4 km.
        Path = new PolylinePath([(60.17, 24.94), (60.17, 24.94 + (3000 / MetresPerDegreeLon))]);
        Catalog = new InMemoryTripCatalog();
    }

    public static double MetresPerDegreeLon => 6_371_008.8 * Math.PI / 180 * Math.Cos(60.17 * Math.PI / 180);

    public PolylinePath Path { get; }

    public InMemoryTripCatalog Catalog { get; }

    /// <summary>Adds trip <paramref name="tripId"/> of route 10 starting at <paramref name="startSeconds"/>: 2 min between stops, 20 s dwell.</summary>
    public TripPlan AddTrip(string tripId, int startSeconds, string route = "10") =>
        Catalog.Add(tripId, route, 0, Day, Path,
        [
            ("S0", startSeconds, startSeconds, 0),
            ("S1", startSeconds + 120, startSeconds + 140, 1000),
            ("S2", startSeconds + 260, startSeconds + 280, 2000),
            ("S3", startSeconds + 400, startSeconds + 400, 3000),
        ]);

    /// <summary>The WGS84 point at <paramref name="along"/> metres, <paramref name="offNorth"/> metres north of the line.</summary>
    public (double Lat, double Lon) At(double along, double offNorth = 0) =>
        (60.17 + (offNorth / (6_371_008.8 * Math.PI / 180)), 24.94 + (along / MetresPerDegreeLon));

    public static VehicleEvent Vp(string vehicle, DateTime t, (double Lat, double Lon) p, float speed, int startSeconds, string route = "10")
    {
        var e = VehicleEvent.Empty;
        e.Source = EventSource.Hfp;
        e.Type = EventType.Vp;
        e.Journey = JourneyType.Journey;
        e.Mode = TransportMode.Bus;
        e.VehicleId = vehicle;
        e.EventTime = t;
        e.ReceiveTime = t;
        e.Latitude = p.Lat;
        e.Longitude = p.Lon;
        e.Speed = speed;
        e.RouteId = route;
        e.DirectionId = 0;
        e.OperatingDay = Day;
        e.StartTimeSeconds = startSeconds;
        return e;
    }

    public static VehicleEvent StopEvent(VehicleEvent template, EventType type, string stopId)
    {
        var e = template;
        e.Type = type;
        e.StopId = stopId;
        return e;
    }

    /// <summary>
    /// Drives a vehicle at 10 m/s from stop to stop, standing <paramref name="dwell"/> seconds at S1 and S2, one
    /// position a second; returns the events and the true arrival time (first second standing) at each stop.
    /// </summary>
    public static (List<VehicleEvent> Events, DateTime[] Arrivals, DateTime[] Departures) Drive(
        TestRoute route, string vehicle, int startSeconds, int lateSeconds = 0, int dwell = 20, Func<double, double>? offNorth = null)
    {
        var events = new List<VehicleEvent>();
        var arrivals = new DateTime[4];
        var departures = new DateTime[4];
        var t = Midnight.AddSeconds(startSeconds + lateSeconds);
        arrivals[0] = departures[0] = t;
        var along = 0.0;
        events.Add(Vp(vehicle, t, route.At(0), 0, startSeconds));
        for (var stop = 1; stop <= 3; stop++)
        {
            var target = stop * 1000.0;
            while (along < target)
            {
                t = t.AddSeconds(1);
                along = Math.Min(target, along + 10);
                var standing = along >= target;
                events.Add(Vp(vehicle, t, route.At(along, offNorth?.Invoke(along) ?? 0), standing ? 0 : 10, startSeconds));
            }

            arrivals[stop] = t;
            if (stop < 3)
            {
                for (var s = 0; s < dwell; s++)
                {
                    t = t.AddSeconds(1);
                    events.Add(Vp(vehicle, t, route.At(along), 0, startSeconds));
                }

                departures[stop] = t;
            }
            else
            {
                departures[stop] = t;
            }
        }

        return (events, arrivals, departures);
    }
}
