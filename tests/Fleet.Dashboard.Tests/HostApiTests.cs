using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using Fleet.Dashboard.Live;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Fleet.Ingest.Events;

namespace Fleet.Dashboard.Tests;

[Trait("Category", "Integration")]
public sealed class HostApiTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static VehicleState Vehicle(string id, string route = "10", double lat = 60.17, double lon = 24.94) =>
        new(id, route, 0, $"trip-{id}", lat, lon, 45, 10, 30, TransportMode.Bus, "S2", DateTime.UtcNow);

    [Fact]
    public async Task Vehicles_AfterPublish_ListedFilteredAndFoundByIdWithSlash()
    {
        await using var host = await TestHost.StartAsync();
        host.Live.PublishVehicle(Vehicle("0018/00001", route: "10"));
        host.Live.PublishVehicle(Vehicle("0018/00002", route: "20"));
        var now = DateTime.UtcNow;
        host.Live.PublishPrediction(new ArrivalPrediction("S2", "trip-0018/00001", "0018/00001", "10", 2, now.AddMinutes(3), now.AddMinutes(2), now.AddMinutes(5), now.AddMinutes(2), now));

        var all = await host.GetJsonAsync("api/vehicles");
        var route20 = await host.GetJsonAsync("api/vehicles?route=20");
        var one = await host.GetJsonAsync("api/vehicles/0018/00001");

        Assert.Equal(2, all.GetArrayLength());
        Assert.Equal("0018/00002", Assert.Single(route20.EnumerateArray()).GetProperty("id").GetString());
        Assert.Equal("bus", one.GetProperty("vehicle").GetProperty("mode").GetString());
        Assert.Equal(30, one.GetProperty("vehicle").GetProperty("delaySeconds").GetInt32());
        Assert.Equal("S2", Assert.Single(one.GetProperty("nextStops").EnumerateArray()).GetProperty("stopId").GetString());
    }

    [Fact]
    public async Task VehicleById_HfpJourneyKeyAndTrackedGtfsTrip_NextStopsAreTheVehiclesPredictions()
    {
        // HFP names the journey route:direction:day:start; tracking predicts under the GTFS trip it matched, and the
        // block's next trip: both are the vehicle's next stops, its trip first. Another bus's predictions are not.
        await using var host = await TestHost.StartAsync();
        var now = DateTime.UtcNow;
        host.Live.PublishVehicle(new VehicleState("0018/00408", "1027", 1, "1027:1:2026-03-02:0712", 60.17, 24.94, 86, 7, 25,
            TransportMode.Bus, "1003440", now));
        host.Live.PublishPrediction(new ArrivalPrediction("S9", "1027_2_0750", "0018/00408", "1027", 1, now.AddMinutes(20), now.AddMinutes(19), now.AddMinutes(22), now.AddMinutes(19), now) { NextTrip = true });
        host.Live.PublishPrediction(new ArrivalPrediction("S2", "1027_2_0712", "0018/00408", "1027", 5, now.AddMinutes(3), now.AddMinutes(2), now.AddMinutes(4), now.AddMinutes(2), now));
        host.Live.PublishPrediction(new ArrivalPrediction("S2", "1027_2_0718", "0018/00409", "1027", 5, now.AddMinutes(9), now.AddMinutes(8), now.AddMinutes(10), now.AddMinutes(8), now));

        var one = await host.GetJsonAsync("api/vehicles/0018/00408");

        var next = one.GetProperty("nextStops").EnumerateArray()
            .Select(p => (p.GetProperty("tripId").GetString(), p.GetProperty("stopId").GetString(), p.GetProperty("nextTrip").GetBoolean())).ToList();
        // The trip it is on first (stop_sequence 5), then the block's next trip (sequence 1), marked as such.
        Assert.Equal([("1027_2_0712", "S2", false), ("1027_2_0750", "S9", true)], next);
    }

    [Fact]
    public async Task VehicleById_Unknown_Returns404WithMessage()
    {
        await using var host = await TestHost.StartAsync();

        using var response = await host.Http.GetAsync(new Uri("api/vehicles/0099/12345", UriKind.Relative), Ct);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("unknown vehicle '0099/12345'", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Routes_WithNetwork_ListsScheduleRoutesWithLiveCounts()
    {
        await using var host = await TestHost.StartAsync(network: new FakeNetwork());
        host.Live.PublishVehicle(Vehicle("a", route: "10"));
        host.Live.PublishVehicle(Vehicle("b", route: "10"));

        var routes = await host.GetJsonAsync("api/routes");

        var byId = routes.EnumerateArray().ToDictionary(r => r.GetProperty("id").GetString()!, r => r.GetProperty("vehicles").GetInt32());
        Assert.Equal(new Dictionary<string, int> { ["10"] = 2, ["20"] = 0 }, byId);
    }

    [Fact]
    public async Task Routes_WithoutNetwork_ListsRoutesSeenLive()
    {
        await using var host = await TestHost.StartAsync();
        host.Live.PublishVehicle(Vehicle("a", route: "7"));

        var routes = await host.GetJsonAsync("api/routes");

        Assert.Equal("7", Assert.Single(routes.EnumerateArray()).GetProperty("id").GetString());
    }

    [Fact]
    public async Task StopArrivals_ScheduledAndPredicted_MergedWithRange()
    {
        var network = new FakeNetwork();
        await using var host = await TestHost.StartAsync(network: network);
        var now = DateTime.UtcNow;
        network.ScheduleBase = now.AddMinutes(1);
        // The prediction is for the scheduled trip sched-1 (scheduled at +11 min), predicted 2 minutes late.
        host.Live.PublishPrediction(new ArrivalPrediction("S1", "sched-1", "0018/00001", "10", 2, now.AddMinutes(13), now.AddMinutes(12), now.AddMinutes(15), now.AddMinutes(11), now));

        var body = await host.GetJsonAsync("api/stops/S1/arrivals?minutes=30");

        Assert.Equal("Central", body.GetProperty("stop").GetProperty("name").GetString());
        var arrivals = body.GetProperty("arrivals").EnumerateArray().ToList();
        // ScheduleBase + 0, 10, 20 min fall in the 30-minute window (FakeNetwork schedules every 10 minutes).
        Assert.Equal(["sched-0", "sched-1", "sched-2"], arrivals.Select(a => a.GetProperty("tripId").GetString()));
        var predicted = arrivals[1];
        Assert.Equal(now.AddMinutes(13), predicted.GetProperty("predicted").GetDateTime(), TimeSpan.FromMilliseconds(1));
        Assert.Equal(now.AddMinutes(12), predicted.GetProperty("low").GetDateTime(), TimeSpan.FromMilliseconds(1));
        Assert.Equal(now.AddMinutes(15), predicted.GetProperty("high").GetDateTime(), TimeSpan.FromMilliseconds(1));
        Assert.False(arrivals[0].TryGetProperty("predicted", out _), "a trip without a prediction is scheduled only");
    }

    [Theory]
    [InlineData("api/stops/NOPE/arrivals", HttpStatusCode.NotFound, "unknown stop 'NOPE'")]
    [InlineData("api/stops/S1/arrivals?minutes=0", HttpStatusCode.BadRequest, "minutes must be between 1 and 1440")]
    [InlineData("api/stops/S1/arrivals?minutes=abc", HttpStatusCode.BadRequest, "")]
    public async Task StopArrivals_BadInput_ClearError(string path, HttpStatusCode expected, string message)
    {
        await using var host = await TestHost.StartAsync(network: new FakeNetwork());

        using var response = await host.Http.GetAsync(new Uri(path, UriKind.Relative), Ct);

        Assert.Equal(expected, response.StatusCode);
        Assert.Contains(message, await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_TwoHostsInOneProcess_EachShowsOnlyItsOwn()
    {
        // Meters are found by name process-wide: each host must export its own instruments only.
        await using var one = await TestHost.StartAsync();
        await using var two = await TestHost.StartAsync();
        for (var i = 0; i < 3; i++)
        {
            one.Live.Metrics.CountEvent(DateTime.UtcNow);
        }

        var first = PrometheusText.Parse(await one.Http.GetStringAsync(new Uri("metrics", UriKind.Relative), Ct));
        var second = PrometheusText.Parse(await two.Http.GetStringAsync(new Uri("metrics", UriKind.Relative), Ct));
        Assert.Equal(3, first["fleet_events_total"]);
        Assert.Equal(0, second["fleet_events_total"]);
    }

    [Fact]
    public async Task Otlp_Collector_ReceivesFleetMetrics()
    {
        // A collector's OTLP/HTTP receiver: records what is posted to /v1/metrics.
        var received = new System.Collections.Concurrent.ConcurrentQueue<(string? ContentType, byte[] Body)>();
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var collector = builder.Build();
        collector.MapPost("/v1/metrics", async (Microsoft.AspNetCore.Http.HttpRequest request) =>
        {
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body);
            received.Enqueue((request.ContentType, body.ToArray()));
            return Microsoft.AspNetCore.Http.Results.Ok();
        });
        await collector.StartAsync(Ct);
        var collectorUri = new Uri(collector.Urls.First());

        await using var host = await TestHost.StartAsync(serve: o => o with { Otlp = collectorUri, OtlpInterval = TimeSpan.FromMilliseconds(200) });
        host.Live.Metrics.CountEvent(DateTime.UtcNow);

        var until = DateTime.UtcNow.AddSeconds(20);
        while (!received.Any(r => Contains(r.Body, "fleet_events_total")))
        {
            Assert.True(DateTime.UtcNow < until, $"no OTLP export with fleet_events_total in 20 s ({received.Count} posts)");
            await Task.Delay(100, Ct);
        }

        var export = received.First(r => Contains(r.Body, "fleet_events_total"));
        Assert.Equal("application/x-protobuf", export.ContentType);
        // The resource names the service; the runtime's meter rides along.
        Assert.True(Contains(export.Body, "fleet"), "service.name missing");
        Assert.Contains(received, r => Contains(r.Body, "dotnet.gc.collections"));

        static bool Contains(byte[] body, string text) => body.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(text)) >= 0;
    }

    [Fact]
    public async Task HealthAlertsMetricsNetwork_Serve_WhatTheStateHolds()
    {
        await using var host = await TestHost.StartAsync(network: new FakeNetwork());
        var registry = (SourceRegistry)host.App.Services.GetService(typeof(SourceRegistry))!;
        var source = registry.Register("replay", "replay");
        source.Connected = true;
        source.CountEvent(DateTime.UtcNow);
        host.Live.Metrics.CountEvent(DateTime.UtcNow);
        host.Live.PublishVehicle(Vehicle("a"));
        host.Live.PublishAlert(new LiveAlert("a1", AlertSeverity.Severe, "vehicle a is 10 min late", "10", null, "a", DateTime.UtcNow));

        var health = await host.GetJsonAsync("api/health");
        var alerts = await host.GetJsonAsync("api/alerts");
        var network = await host.GetJsonAsync("api/network");
        var metrics = await host.Http.GetStringAsync(new Uri("metrics", UriKind.Relative), Ct);

        Assert.Equal("ok", health.GetProperty("status").GetString());
        Assert.Equal(1, health.GetProperty("vehicles").GetInt32());
        var s = Assert.Single(health.GetProperty("sources").EnumerateArray());
        Assert.True(s.GetProperty("connected").GetBoolean());
        Assert.Equal(1, s.GetProperty("events").GetInt64());
        Assert.Equal("severe", Assert.Single(alerts.EnumerateArray()).GetProperty("severity").GetString());
        // FakeNetwork: one line and three stops.
        Assert.Equal(4, network.GetProperty("features").GetArrayLength());
        var samples = PrometheusText.Parse(metrics);
        Assert.Equal(1, samples["fleet_events_total"]);
        Assert.Equal(1, samples["fleet_vehicles"]);
        Assert.Equal(1, samples["fleet_source_connected{kind=\"replay\",source=\"replay\"}"]);
        Assert.Equal(0, samples["fleet_hub_clients"]);
        Assert.Contains("# TYPE fleet_events_total counter\n", metrics, StringComparison.Ordinal);
        // The platform's own meters come with OpenTelemetry: the runtime's and Kestrel's.
        Assert.Contains(samples.Keys, k => k.StartsWith("dotnet_gc_collections_total", StringComparison.Ordinal));
        Assert.Contains(samples.Keys, k => k.StartsWith("kestrel_active_connections", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ApiKey_Set_RequiredOnApiHubAndMetricsButNotThePage()
    {
        await using var host = await TestHost.StartAsync(apiKey: "s3cret");

        using var noKey = await host.Http.GetAsync(new Uri("api/vehicles", UriKind.Relative), Ct);
        using var wrongKey = new HttpRequestMessage(HttpMethod.Get, new Uri("metrics", UriKind.Relative));
        wrongKey.Headers.Add("X-Api-Key", "nope");
        using var wrong = await host.Http.SendAsync(wrongKey, Ct);
        using var withHeader = new HttpRequestMessage(HttpMethod.Get, new Uri("api/vehicles", UriKind.Relative));
        withHeader.Headers.Add("X-Api-Key", "s3cret");
        using var ok = await host.Http.SendAsync(withHeader, Ct);
        using var okQuery = await host.Http.GetAsync(new Uri("api/health?access_token=s3cret", UriKind.Relative), Ct);
        using var page = await host.Http.GetAsync(new Uri("/", UriKind.Relative), Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, noKey.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal(HttpStatusCode.OK, okQuery.StatusCode);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        await Assert.ThrowsAsync<WebSocketException>(() => host.ConnectAsync());
        await using var hub = await host.ConnectAsync(key: "s3cret");
        Assert.Equal(1, (await hub.InvokeAsync("Subscribe", ["stop", "S1"], Ct))!.Value.GetInt32());
    }

    [Fact]
    public async Task Page_Built_ServesIndexWithBundledScript()
    {
        await using var host = await TestHost.StartAsync();

        var html = await host.Http.GetStringAsync(new Uri("/", UriKind.Relative), Ct);

        // Built by the Dashboard build (vite); the bundle is referenced from /assets/, never from a CDN.
        Assert.Contains("<script type=\"module\" crossorigin src=\"/assets/", html, StringComparison.Ordinal);
        Assert.DoesNotContain("https://", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Hub_OversizedMessage_ClosesConnection()
    {
        await using var host = await TestHost.StartAsync();
        await using var hub = await host.ConnectAsync();

        var huge = new string('x', 10_000);
        var ex = await Record.ExceptionAsync(() => hub.InvokeAsync("Subscribe", ["stop", huge], Ct));

        Assert.NotNull(ex);
        Assert.Null(await ReadOrNullAsync(hub));
    }

    private static async Task<JsonElement?> ReadOrNullAsync(HubClient.SignalRJsonClient hub)
    {
        await foreach (var m in hub.Messages.ReadAllAsync(Ct))
        {
            return m.Arguments.FirstOrDefault();
        }

        return null;
    }
}

[Trait("Category", "Integration")]
public sealed class GtfsNetworkTests
{
    [Fact]
    public void SampleCity_Network_HasRoutesStopsShapesAndSchedule()
    {
        var network = Hosting.GtfsNetwork.Load(Path.Combine(Fleet.Testing.RepoPaths.SampleData, "gtfs.zip"));
        using var geo = JsonDocument.Parse(network.GeoJson);
        var features = geo.RootElement.GetProperty("features").EnumerateArray().ToList();
        var stop = network.Schedule.Stops[0];
        var day = new DateOnly(2026, 3, 2);
        var arrivals = network.ScheduledArrivals(stop.Id, network.Schedule.ToUtc(day, new Fleet.Gtfs.ServiceTime(0)), network.Schedule.ToUtc(day, new Fleet.Gtfs.ServiceTime(30 * 3600)), 1000);

        // sample-data/README.md: 8 routes, 248 stops, 113 trips on 2026-03-02.
        Assert.Equal(8, network.Routes.Count);
        Assert.Equal(248, features.Count(f => f.GetProperty("geometry").GetProperty("type").GetString() == "Point"));
        Assert.True(features.Count(f => f.GetProperty("geometry").GetProperty("type").GetString() == "LineString") >= 8);
        Assert.NotEmpty(arrivals);
        Assert.Equal(arrivals.OrderBy(a => a.Scheduled), arrivals);
    }

    [Fact]
    public void TripHeadsign_KnownAndUnknownTrips_FromTheScheduleOrNull()
    {
        var network = Hosting.GtfsNetwork.Load(Path.Combine(Fleet.Testing.RepoPaths.SampleData, "gtfs.zip"));
        // Expected from trips.txt read here on its own: trip_id and trip_headsign columns.
        using var zip = System.IO.Compression.ZipFile.OpenRead(Path.Combine(Fleet.Testing.RepoPaths.SampleData, "gtfs.zip"));
        using var reader = new StreamReader(zip.GetEntry("trips.txt")!.Open());
        var header = reader.ReadLine()!.Split(',');
        var first = reader.ReadLine()!.Split(',');
        var tripId = first[Array.IndexOf(header, "trip_id")];
        var headsign = first[Array.IndexOf(header, "trip_headsign")];

        Assert.False(string.IsNullOrEmpty(headsign));
        Assert.Equal(headsign, network.TripHeadsign(tripId));
        Assert.Null(network.TripHeadsign("no-such-trip"));
    }
}

public sealed class ServeCommandTests
{
    [Fact]
    public async Task Serve_BadSpeed_ExitsWithMessage()
    {
        var error = new StringWriter();
        var previous = Console.Error;
        Console.SetError(error);
        try
        {
            var rc = await Cli.FleetCli.Build().Parse(["serve", "--speed", "0", "--urls", "http://127.0.0.1:0"]).InvokeAsync(cancellationToken: TestContext.Current.CancellationToken);

            Assert.Equal(2, rc);
            Assert.Contains("--speed must be > 0", error.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            Console.SetError(previous);
        }
    }

    [Theory]
    [InlineData("--lateness", "-1")]
    [InlineData("--late-tolerance", "NaN")]
    [InlineData("--lateness", "86400")]
    public async Task Serve_BadLateness_ExitsWithMessage(string option, string value)
    {
        var error = new StringWriter();
        var previous = Console.Error;
        Console.SetError(error);
        try
        {
            var rc = await Cli.FleetCli.Build().Parse(["serve", option, value, "--urls", "http://127.0.0.1:0"]).InvokeAsync(cancellationToken: TestContext.Current.CancellationToken);

            Assert.Equal(2, rc);
            Assert.Contains("--lateness and --late-tolerance must be seconds from 0 to 3600", error.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            Console.SetError(previous);
        }
    }
}
