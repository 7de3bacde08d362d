using System.Text.Json;
using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.Live;
using Fleet.Gtfs.Realtime;
using Fleet.Ingest.Events;
using Fleet.Testing;

namespace Fleet.Dashboard.Tests;

/// <summary>The API on the sample city's GTFS: routes with colours and names, short names accepted, the page's
/// configuration, and Fleet's own GTFS-RT VehiclePositions feed.</summary>
[Trait("Category", "Integration")]
public sealed class NetworkApiTests
{
    private static readonly Lazy<GtfsNetwork> s_sample = new(() => GtfsNetwork.Load(Path.Combine(RepoPaths.SampleData, "gtfs.zip")));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Routes_FeedWithoutColours_StablePaletteAsSixHexDigitsAndNames()
    {
        await using var host = await TestHost.StartAsync(network: s_sample.Value);

        var routes = (await host.GetJsonAsync("api/routes")).EnumerateArray().ToList();
        await using var again = await TestHost.StartAsync(network: GtfsNetwork.Load(Path.Combine(RepoPaths.SampleData, "gtfs.zip")));
        var second = (await again.GetJsonAsync("api/routes")).EnumerateArray().ToList();

        Assert.Equal(8, routes.Count);
        Assert.All(routes, r => Assert.Matches("^[0-9A-F]{6}$", r.GetProperty("color").GetString()));
        Assert.All(routes, r => Assert.Matches("^(000000|FFFFFF)$", r.GetProperty("textColor").GetString()));
        Assert.True(routes.Select(r => r.GetProperty("color").GetString()).Distinct().Count() >= 5, "the palette gives the routes different colours");
        Assert.Equal(routes.Select(r => r.GetProperty("color").GetString()), second.Select(r => r.GetProperty("color").GetString()));
        var r27 = routes.Single(r => r.GetProperty("id").GetString() == "1027");
        Assert.Equal(("27", "Pohjola - Niittykumpu"), (r27.GetProperty("shortName").GetString(), r27.GetProperty("longName").GetString()));
    }

    [Fact]
    public async Task Network_GeoJson_LinesCarryTheRouteColourStopsTheirCode()
    {
        await using var host = await TestHost.StartAsync(network: s_sample.Value);

        var geo = await host.GetJsonAsync("api/network");

        var features = geo.GetProperty("features").EnumerateArray().ToList();
        var lines = features.Where(f => f.GetProperty("geometry").GetProperty("type").GetString() == "LineString").ToList();
        Assert.NotEmpty(lines);
        Assert.All(lines, f => Assert.Matches("^[0-9A-F]{6}$", f.GetProperty("properties").GetProperty("color").GetString()));
        var stop = features.First(f => f.GetProperty("properties").TryGetProperty("id", out var id) && id.GetString() == "1000134");
        Assert.Equal("0134", stop.GetProperty("properties").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Vehicles_RouteByShortName_SameAsByRouteId()
    {
        await using var host = await TestHost.StartAsync(network: s_sample.Value);
        host.Live.PublishVehicle(LiveEventsTests.Vehicle("0018/00001", route: "1061"));
        host.Live.PublishVehicle(LiveEventsTests.Vehicle("0018/00002", route: "1061"));
        host.Live.PublishVehicle(LiveEventsTests.Vehicle("0018/00003", route: "1027"));

        var byShort = (await host.GetJsonAsync("api/vehicles?route=61")).EnumerateArray().Select(v => v.GetProperty("id").GetString()).Order().ToList();
        var byId = (await host.GetJsonAsync("api/vehicles?route=1061")).EnumerateArray().Select(v => v.GetProperty("id").GetString()).Order().ToList();

        Assert.Equal(["0018/00001", "0018/00002"], byShort);
        Assert.Equal(byId, byShort);
    }

    [Fact]
    public async Task Vehicle_Panel_NamesBesideIds()
    {
        await using var host = await TestHost.StartAsync(network: s_sample.Value);
        var now = DateTime.UtcNow;
        host.Live.PublishVehicle(LiveEventsTests.Vehicle("0018/00001", route: "1061"));
        host.Live.PublishPrediction(new ArrivalPrediction("1000134", "T1", "0018/00001", "1061", 4, now.AddMinutes(3), now.AddMinutes(2), now.AddMinutes(4), now.AddMinutes(2), now));

        var one = await host.GetJsonAsync("api/vehicles/0018/00001");

        Assert.Equal("61", one.GetProperty("route").GetProperty("shortName").GetString());
        var stop = Assert.Single(one.GetProperty("nextStops").EnumerateArray());
        Assert.Equal("Omenankatu/Leppänväylä", stop.GetProperty("stopName").GetString());
    }

    [Fact]
    public async Task RouteHistory_TrackedArrivals_DelayAndHeadwayBy5Minutes()
    {
        await using var host = await TestHost.StartAsync(network: s_sample.Value);
        var output = new LiveTrackingOutput(host.Live);
        var t0 = new DateTime(2026, 3, 2, 6, 0, 0, DateTimeKind.Utc);
        void Arrive(string vehicle, string trip, string stop, DateTime at, int delay) => output.Publish(new Fleet.Tracking.Output.DerivedEvent
        {
            Type = Fleet.Tracking.Output.DerivedEventType.Arrival, Time = at, VehicleId = vehicle, TripId = trip, RouteId = "1061",
            StopId = stop, StopSequence = 3, DelaySeconds = delay, ScheduledHeadwaySeconds = 600,
        });
        Arrive("a", "T1", "S1", t0.AddMinutes(1), 60);
        Arrive("a", "T1", "S2", t0.AddMinutes(3), 120);
        Arrive("b", "T2", "S1", t0.AddMinutes(9), 240); // 8 min after the route's previous arrival at S1

        var history = await host.GetJsonAsync("api/routes/61/history"); // by short name

        Assert.Equal("1061", history.GetProperty("route").GetString());
        var points = history.GetProperty("points").EnumerateArray().ToList();
        Assert.Equal(2, points.Count);
        Assert.Equal((2, 90.0), (points[0].GetProperty("arrivals").GetInt32(), points[0].GetProperty("meanDelaySeconds").GetDouble()));
        // No headway yet in the first bucket: the API leaves null fields out.
        Assert.False(points[0].TryGetProperty("meanHeadwaySeconds", out var none) && none.ValueKind != JsonValueKind.Null);
        Assert.Equal((240.0, 480.0, 600.0), (points[1].GetProperty("meanDelaySeconds").GetDouble(),
            points[1].GetProperty("meanHeadwaySeconds").GetDouble(), points[1].GetProperty("scheduledHeadwaySeconds").GetDouble()));
        using var unknown = await host.Http.GetAsync(new Uri("api/routes/nope/history", UriKind.Relative), Ct);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task Hub_RouteByShortName_FollowsThatRoute()
    {
        await using var host = await TestHost.StartAsync(network: s_sample.Value);
        await using var hub = await host.ConnectAsync();

        await hub.InvokeAsync("Subscribe", ["route", "61"], Ct);

        var client = Assert.Single(host.Live.ClientIds);
        Assert.Equal(new Subscription(SubscriptionKind.Route, "1061", default), Assert.Single(host.Live.SubscriptionsOf(client)));
    }

    [Fact]
    public async Task Config_TilesByDefaultOpenStreetMapWithAttribution_NoneForNone()
    {
        await using var host = await TestHost.StartAsync();
        var config = await host.GetJsonAsync("api/config");
        Assert.Equal(ServeOptions.OpenStreetMapTiles, config.GetProperty("tileUrl").GetString());
        Assert.Contains("OpenStreetMap contributors", config.GetProperty("tileAttribution").GetString(), StringComparison.Ordinal);
        Assert.False(config.GetProperty("replay").GetBoolean());

        Assert.Null(new ServeOptions { TileUrl = "none" }.EffectiveTileUrl);
        Assert.Equal("https://tiles.example/{z}/{x}/{y}.png", new ServeOptions { TileUrl = "https://tiles.example/{z}/{x}/{y}.png" }.EffectiveTileUrl);
    }

    [Fact]
    public async Task VehiclePositions_Feed_DecodesAndValidatesAgainstTheGtfs()
    {
        await using var host = await TestHost.StartAsync(network: s_sample.Value);
        var now = DateTime.UtcNow;
        // 0018/00426 at the first stop of a GTFS trip, which tracking has it on (its round names it).
        var schedule = s_sample.Value.Schedule;
        var trip = schedule.Trips[0].Id;
        var first = schedule.Stops[schedule.GetStopTimes(0)[0].StopIndex];
        var route = schedule.Routes[schedule.Trips[0].RouteIndex].Id;
        host.Live.PublishVehicle(new VehicleState("0018/00426", route, 0, "HFP journey key", first.Latitude, first.Longitude, 90, 8.5, 30, TransportMode.Bus, first.Id, now));
        host.Live.PublishVehicle(new VehicleState("0018/00427", "1061", 1, null, 60.153, 24.945, null, null, null, TransportMode.Bus, null, now));
        host.Live.PublishRound("0018/00426", trip, now, []);

        using var response = await host.Http.GetAsync(new Uri("gtfs-rt/vehicle-positions", UriKind.Relative), Ct);
        var feed = GtfsRtDecoder.Decode(await response.Content.ReadAsByteArrayAsync(Ct));
        var json = await host.GetJsonAsync("gtfs-rt/vehicle-positions?format=json");

        Assert.Equal("application/x-protobuf", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(2, feed.Entity.Count);
        var tracked = feed.Entity.Single(e => e.Id == "0018/00426").Vehicle;
        Assert.Equal((trip, "0018/00426", first.Id), (tracked.Trip.TripId, tracked.Vehicle.Id, tracked.StopId));
        Assert.Equal((float)first.Latitude, tracked.Position.Latitude);
        var second = feed.Entity.Single(e => e.Id == "0018/00427").Vehicle;
        Assert.Equal(("1061", 1u, ""), (second.Trip.RouteId, second.Trip.DirectionId, second.Trip.TripId));
        var findings = new GtfsRtValidator(s_sample.Value.Schedule).Validate(feed, DateTime.UtcNow).Findings;
        // A vehicle that is on no known trip is given by route and direction (W006, a warning, says so); no errors.
        Assert.True(findings.All(f => !f.Code.StartsWith('E') && (f.Code != "W006" || f.EntityId == "0018/00427")),
            string.Join("\n", findings.Select(f => $"{f.Code} {f.EntityId} {f.Message}")));
        Assert.Equal(2, json.GetProperty("entity").GetArrayLength());
    }
}
