using System.Text.Json;
using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.Live;
using Fleet.Dashboard.Sources;
using Fleet.Gtfs.Realtime;
using Fleet.Ingest.Recording;
using Fleet.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TransitRealtime;

namespace Fleet.Dashboard.Tests;

/// <summary><c>fleet serve --gtfs-rt</c> (polling a feed) and Fleet's own feed <c>/gtfs-rt/trip-updates</c>.</summary>
[Trait("Category", "Integration")]
public sealed class GtfsRtTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly Lazy<GtfsNetwork> s_network = new(() => GtfsNetwork.Load(Path.Combine(RepoPaths.SampleData, "gtfs.zip")));

    private static string Recording => Path.Combine(RepoPaths.SampleData, "recording.hfp.gz");

    // The first snapshot of a feed in the sample recording (lines gtfs-rt/<feed>, payload already base64-decoded).
    private static byte[] FirstSnapshot(string feed)
    {
        using var reader = RecordingReader.Open(Recording);
        while (reader.TryRead(out var line))
        {
            if (line.Kind == RecordKind.GtfsRt && System.Text.Encoding.UTF8.GetString(line.Topic) == "gtfs-rt/" + feed)
            {
                return line.Payload.ToArray();
            }
        }

        throw new InvalidOperationException($"no gtfs-rt/{feed} line in {Recording}");
    }

    /// <summary>A feed server on Kestrel: serves bytes with an ETag and answers 304 to a matching If-None-Match.</summary>
    private sealed class FeedServer : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private int _full;
        private int _notModified;

        private FeedServer(WebApplication app) => _app = app;

        public Uri BaseUri { get; private set; } = null!;

        public int Full => Volatile.Read(ref _full);

        public int NotModified => Volatile.Read(ref _notModified);

        public static async Task<FeedServer> StartAsync(IReadOnlyDictionary<string, byte[]> feeds)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            var server = new FeedServer(app);
            foreach (var (path, body) in feeds)
            {
                var etag = $"\"{path.TrimStart('/')}-1\"";
                app.MapGet(path, (HttpContext context) =>
                {
                    if (context.Request.Headers.IfNoneMatch.ToString() == etag)
                    {
                        Interlocked.Increment(ref server._notModified);
                        return Results.StatusCode(StatusCodes.Status304NotModified);
                    }

                    Interlocked.Increment(ref server._full);
                    context.Response.Headers.ETag = etag;
                    return Results.Bytes(body, "application/x-protobuf");
                });
            }

            await app.StartAsync(Ct);
            server.BaseUri = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
            return server;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync(CancellationToken.None);
            await _app.DisposeAsync();
        }
    }

    private static async Task AwaitAsync(Func<Task<bool>> condition, string what, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(50, Ct);
        }
    }

    [Fact]
    public async Task GtfsRt_PolledFeeds_PositionsBecomeVehiclesAndTripUpdatesReachTheTripBoard()
    {
        var positions = FirstSnapshot("vehicle-positions");
        var updates = FirstSnapshot("trip-updates");
        await using var server = await FeedServer.StartAsync(new Dictionary<string, byte[]> { ["/vp.pb"] = positions, ["/tu.pb"] = updates });
        await using var host = await TestHost.StartAsync(network: s_network.Value, configure: s => s
            .AddGtfsRtSource(GtfsRtSourceOptions.Parse(new Uri(server.BaseUri, "/vp.pb").ToString(), TimeSpan.FromSeconds(1)))
            .AddGtfsRtSource(GtfsRtSourceOptions.Parse(new Uri(server.BaseUri, "/tu.pb").ToString(), TimeSpan.FromSeconds(1))));

        // Expected figures from decoding the served snapshots here: vehicles with a position (by their vehicle
        // descriptor id), and the stop updates tracking's trip board gets (one per stop_time_update, one per
        // cancelled trip).
        var vpFeed = GtfsRtDecoder.Decode(positions);
        var expectedVehicles = vpFeed.Entity.Where(e => e.Vehicle?.Position is not null).Select(e => e.Vehicle.Vehicle.Id).ToHashSet();
        var tuFeed = GtfsRtDecoder.Decode(updates);
        var expectedStopUpdates = tuFeed.Entity.Where(e => e.TripUpdate is not null).Sum(e =>
            e.TripUpdate.Trip.ScheduleRelationship == TripDescriptor.Types.ScheduleRelationship.Canceled ? 1 : e.TripUpdate.StopTimeUpdate.Count);
        var pipeline = host.App.Services.GetRequiredService<LivePipeline>();

        // Two polls per feed at least: the second is conditional and answered 304.
        await AwaitAsync(async () => server.NotModified >= 2 && (await host.GetJsonAsync("api/vehicles")).GetArrayLength() == expectedVehicles.Count,
            "both feeds polled twice and the vehicles on the map");
        pipeline.Flush();
        var vehicles = (await host.GetJsonAsync("api/vehicles")).EnumerateArray().Select(v => v.GetProperty("id").GetString()!).ToHashSet();
        var health = await host.GetJsonAsync("api/health");

        Assert.NotEmpty(expectedVehicles);
        Assert.Equal(expectedVehicles, vehicles);
        Assert.Equal(2, server.Full);
        Assert.True(expectedStopUpdates > 0);
        Assert.Equal(expectedStopUpdates, pipeline.Stream!.StopUpdatesTracked);
        var sources = health.GetProperty("sources").EnumerateArray().ToList();
        Assert.Equal(2, sources.Count);
        Assert.All(sources, s =>
        {
            Assert.Equal("gtfs-rt", s.GetProperty("kind").GetString());
            Assert.Equal("connected", s.GetProperty("state").GetString());
        });
        Assert.Equal(expectedVehicles.Count, sources.Single(s => s.GetProperty("name").GetString()!.EndsWith("/vp.pb", StringComparison.Ordinal)).GetProperty("events").GetInt64());
    }

    [Fact]
    public async Task GtfsRt_TripUpdatesOnly_ObservedStopTimesBecomeArrivalsAndPredictions()
    {
        // A TripUpdates-only feed (as Auckland's): one trip of the sample city with one stop time update, its stop as
        // happened (arrival and departure before the update's timestamp); nothing about the stops after it.
        var sample = GtfsRtDecoder.Decode(FirstSnapshot("trip-updates"));
        var tu = sample.Entity.Select(e => e.TripUpdate).First(t => t is { StopTimeUpdate.Count: > 2 } && t.Trip.ScheduleRelationship == TripDescriptor.Types.ScheduleRelationship.Scheduled).Clone();
        var first = tu.StopTimeUpdate[0];
        var at = first.Arrival?.Time ?? first.Departure.Time;
        first.Arrival = new TripUpdate.Types.StopTimeEvent { Time = at };
        first.Departure = new TripUpdate.Types.StopTimeEvent { Time = at + 20 };
        tu.StopTimeUpdate.Clear();
        tu.StopTimeUpdate.Add(first);
        tu.Timestamp = (ulong)(at + 30);
        var feed = new FeedMessage { Header = new FeedHeader { GtfsRealtimeVersion = "2.0", Timestamp = tu.Timestamp } };
        feed.Entity.Add(new FeedEntity { Id = "1", TripUpdate = tu });
        var schedule = s_network.Value.Schedule!;
        var tripIndex = schedule.Trips.Select((t, i) => (t, i)).First(x => x.t.Id == tu.Trip.TripId).i;
        var route = schedule.Routes[schedule.Trips[tripIndex].RouteIndex].Id;
        var times = schedule.GetStopTimes(tripIndex).ToArray();
        var k = Enumerable.Range(0, times.Length).First(i => first.HasStopSequence ? times[i].Sequence == first.StopSequence : schedule.Stops[times[i].StopIndex].Id == first.StopId);
        var nextStop = schedule.Stops[times[k + 1].StopIndex].Id;
        await using var server = await FeedServer.StartAsync(new Dictionary<string, byte[]> { ["/tu.pb"] = Google.Protobuf.MessageExtensions.ToByteArray(feed) });
        await using var host = await TestHost.StartAsync(network: s_network.Value, configure: s => s
            .AddSingleton(new Fleet.Tracking.TrackingOptions { TripUpdateStopEvents = true }) // what serve sets with GTFS-RT sources alone
            .AddGtfsRtSource(GtfsRtSourceOptions.Parse(new Uri(server.BaseUri, "/tu.pb").ToString(), TimeSpan.FromSeconds(1))));

        await AwaitAsync(async () => (await host.GetJsonAsync($"api/routes/{route}/history")).GetProperty("points").EnumerateArray().Sum(p => p.GetProperty("arrivals").GetInt32()) == 1,
            "the observed arrival on the route's history");
        // The next stop's board: the trip, predicted by tracking's predictor (the feed said nothing about that stop).
        var board = (await host.GetJsonAsync($"api/stops/{nextStop}/arrivals")).GetProperty("arrivals").EnumerateArray().ToList();
        var row = Assert.Single(board, a => a.GetProperty("tripId").GetString() == tu.Trip.TripId);
        Assert.Equal(JsonValueKind.String, row.GetProperty("predicted").ValueKind);
        Assert.Equal(tu.Vehicle?.Id is { Length: > 0 } v ? v : "trip:" + tu.Trip.TripId, row.GetProperty("vehicleId").GetString());
    }

    [Fact]
    public async Task GtfsRt_UndecodableSnapshot_CountedAsRejected()
    {
        await using var server = await FeedServer.StartAsync(new Dictionary<string, byte[]> { ["/bad.pb"] = [0xFF, 0xFF, 0xFF, 0x01, 0x02] });
        await using var host = await TestHost.StartAsync(configure: s =>
            s.AddGtfsRtSource(GtfsRtSourceOptions.Parse(new Uri(server.BaseUri, "/bad.pb").ToString(), TimeSpan.FromSeconds(1))));

        JsonElement source = default;
        await AwaitAsync(async () =>
        {
            source = Assert.Single((await host.GetJsonAsync("api/health")).GetProperty("sources").EnumerateArray());
            return source.GetProperty("rejected").TryGetProperty("GtfsRtUndecodable", out _);
        }, "the bad snapshot to be rejected");

        Assert.Equal(1, source.GetProperty("rejected").GetProperty("GtfsRtUndecodable").GetInt64());
        Assert.Equal(0, source.GetProperty("events").GetInt64());
        Assert.False(string.IsNullOrEmpty(source.GetProperty("lastError").GetString()));
    }

    [Theory]
    [InlineData("ftp://feed/x")]
    [InlineData("feed.pb")]
    public void Parse_NotHttp_Throws(string url) =>
        Assert.Throws<ArgumentException>(() => GtfsRtSourceOptions.Parse(url, TimeSpan.FromSeconds(15)));

    [Fact]
    public void Build_Predictions_OneTripUpdatePerTripWithDelayAndUncertainty()
    {
        var t = new DateTime(2026, 3, 2, 6, 0, 0, DateTimeKind.Utc);
        ArrivalPrediction[] predictions =
        [
            new("S3", "T1", "V1", "R1", 3, t.AddSeconds(300), t.AddSeconds(270), t.AddSeconds(360), t.AddSeconds(240), t),
            new("S2", "T1", "V1", "R1", 2, t.AddSeconds(120), t.AddSeconds(120), t.AddSeconds(120), null, t),
            new("S9", "T2", null, null, -1, t.AddSeconds(60), t.AddSeconds(60), t.AddSeconds(60), t.AddSeconds(90), t.AddSeconds(5)),
        ];

        var feed = TripUpdatesFeed.Build(predictions, t.AddSeconds(10));

        Assert.Equal("2.0", feed.Header.GtfsRealtimeVersion);
        Assert.Equal(FeedHeader.Types.Incrementality.FullDataset, feed.Header.Incrementality);
        Assert.Equal((ulong)new DateTimeOffset(t.AddSeconds(10)).ToUnixTimeSeconds(), feed.Header.Timestamp);
        Assert.Equal(["T1", "T2"], feed.Entity.Select(e => e.TripUpdate.Trip.TripId));
        var t1 = feed.Entity[0].TripUpdate;
        Assert.Equal("R1", t1.Trip.RouteId);
        Assert.Equal("V1", t1.Vehicle.Id);
        Assert.Equal(["S2", "S3"], t1.StopTimeUpdate.Select(u => u.StopId));
        Assert.Equal([2u, 3u], t1.StopTimeUpdate.Select(u => u.StopSequence));
        Assert.False(t1.StopTimeUpdate[0].Arrival.HasDelay);
        Assert.False(t1.StopTimeUpdate[0].Arrival.HasUncertainty);
        Assert.Equal(60, t1.StopTimeUpdate[1].Arrival.Delay);
        Assert.Equal(90, t1.StopTimeUpdate[1].Arrival.Uncertainty);
        Assert.Equal(new DateTimeOffset(t.AddSeconds(300)).ToUnixTimeSeconds(), t1.StopTimeUpdate[1].Arrival.Time);
        var t2 = feed.Entity[1].TripUpdate;
        Assert.False(t2.StopTimeUpdate[0].HasStopSequence);
        Assert.Equal(-30, t2.StopTimeUpdate[0].Arrival.Delay);
        Assert.Null(t2.Vehicle);
    }

    [Fact]
    public async Task TripUpdatesFeed_SampleCityReplay_DecodesWithOwnDecoderAndIdsExistInGtfs()
    {
        await using var host = await TestHost.StartAsync(network: s_network.Value,
            configure: s => s.AddReplay(new ReplayOptions { Path = Recording, Speed = 200 }));
        FeedMessage feed = new();
        await AwaitAsync(async () =>
        {
            var bytes = await host.Http.GetByteArrayAsync(new Uri("gtfs-rt/trip-updates", UriKind.Relative), Ct);
            feed = GtfsRtDecoder.Decode(bytes);
            return feed.Entity.Count >= 3;
        }, "at least three trips with predictions in /gtfs-rt/trip-updates", seconds: 60);
        // Paused, the predictions stand still, so the protobuf and the JSON forms describe the same set; polled
        // until two protobuf answers around a JSON one agree (tracking's last batch may still be publishing).
        host.App.Services.GetRequiredService<IReplayControl>().SetPlaying(false);
        FeedMessage pb = new(), json = new();
        string? contentType = null;
        await AwaitAsync(async () =>
        {
            using var pbResponse = await host.Http.GetAsync(new Uri("gtfs-rt/trip-updates", UriKind.Relative), Ct);
            contentType = pbResponse.Content.Headers.ContentType?.MediaType;
            pb = GtfsRtDecoder.Decode(await pbResponse.Content.ReadAsByteArrayAsync(Ct));
            json = GtfsRtDecoder.DecodeJson(await host.Http.GetStringAsync(new Uri("gtfs-rt/trip-updates?format=json", UriKind.Relative), Ct));
            var again = GtfsRtDecoder.Decode(await host.Http.GetByteArrayAsync(new Uri("gtfs-rt/trip-updates", UriKind.Relative), Ct));
            return Same(pb, json) && Same(pb, again);
        }, "the paused feed to stand still");
        using var bad = await host.Http.GetAsync(new Uri("gtfs-rt/trip-updates?format=xml", UriKind.Relative), Ct);

        Assert.Equal("application/x-protobuf", contentType);
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, bad.StatusCode);
        var schedule = s_network.Value.Schedule;
        var trips = schedule.Trips.Select(t => t.Id).ToHashSet();
        var stops = schedule.Stops.Select(s => s.Id).ToHashSet();
        foreach (var f in new[] { pb, json })
        {
            Assert.Equal("2.0", f.Header.GtfsRealtimeVersion);
            Assert.Equal(FeedHeader.Types.Incrementality.FullDataset, f.Header.Incrementality);
            Assert.InRange((long)f.Header.Timestamp, DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 5);
            Assert.NotEmpty(f.Entity);
            Assert.All(f.Entity, e =>
            {
                Assert.Contains(e.TripUpdate.Trip.TripId, trips);
                Assert.NotEmpty(e.TripUpdate.StopTimeUpdate);
                Assert.All(e.TripUpdate.StopTimeUpdate, u =>
                {
                    Assert.Contains(u.StopId, stops);
                    Assert.True(u.Arrival.HasTime);
                });
                var sequences = e.TripUpdate.StopTimeUpdate.Select(u => u.StopSequence).ToList();
                Assert.Equal(sequences.Order(), sequences);
            });
        }

    }

    // The same trips with the same stop time updates (headers differ in their timestamps).
    private static bool Same(FeedMessage a, FeedMessage b) =>
        a.Entity.Select(e => e.TripUpdate).SequenceEqual(b.Entity.Select(e => e.TripUpdate));
}
