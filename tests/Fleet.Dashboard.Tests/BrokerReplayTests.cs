using Fleet.Actors.Hosting;
using System.Globalization;
using System.IO.Compression;
using System.Text.Json;
using System.Text.RegularExpressions;
using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.Live;
using Fleet.Dashboard.Sources;
using Fleet.Ingest.Events;
using Fleet.Testing;
using Fleet.Tracking;
using Fleet.Tracking.Output;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fleet.Dashboard.Tests;

/// <summary>
/// A recording published to a broker (<c>fleet replay --to mqtt://</c>, old timestamps) and served from it
/// (<c>fleet serve --mqtt</c> with the sample GTFS): live tracking follows event time, so the vehicles are tracked
/// (trips, delays) instead of all being judged stale by the wall clock.
/// </summary>
public sealed partial class BrokerReplayTests
{
    private const string Topic = "/hfp/v2/journey/ongoing/#";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly Lazy<GtfsNetwork> s_network = new(() => GtfsNetwork.Load(Path.Combine(RepoPaths.SampleData, "gtfs.zip")));

    [GeneratedRegex("\"tst\":\"([^\"]+)\"")]
    private static partial Regex Tst();

    // One HFP message of the slice, read from the raw text: "receiveTime topic payload"; the vehicle is topic levels
    // 7 and 8 (/hfp/v2/journey/ongoing/<event>/<mode>/<operator>/<vehicle>/...), the event time is the payload's tst.
    private sealed record Message(string Vehicle, DateTime Tst);

    [Fact]
    [Trait("Category", "Integration")]
    public async Task ServeMqtt_SampleReplayedIntoBroker_VehiclesTrackedWithTripsAndDelays()
    {
        var dir = Directory.CreateTempSubdirectory("fleet-broker-replay-").FullName;
        try
        {
            // The first 6,000 lines of the sample recording (about 9 minutes of the morning), as a plain file.
            var lines = new List<string>(6000);
            await using (var gz = new GZipStream(File.OpenRead(Path.Combine(RepoPaths.SampleData, "recording.hfp.gz")), CompressionMode.Decompress))
            using (var text = new StreamReader(gz))
            {
                while (lines.Count < 6000 && await text.ReadLineAsync(Ct) is { } line)
                {
                    lines.Add(line);
                }
            }

            var file = Path.Combine(dir, "slice.hfp");
            await File.WriteAllLinesAsync(file, lines, Ct);
            var messages = new List<Message>();
            foreach (var line in lines)
            {
                var parts = line.Split(' ', 3);
                if (parts.Length == 3 && parts[1].StartsWith("/hfp/", StringComparison.Ordinal) && Tst().Match(parts[2]) is { Success: true } m)
                {
                    var levels = parts[1].Split('/');
                    messages.Add(new Message($"{levels[7]}/{levels[8]}", DateTime.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal)));
                }
            }

            // Live tracking (serve's default) holds nothing and drops only an event more than the late tolerance behind
            // its own vehicle's newest event before it: counted here from the text, an upper bound for
            // fleet_tracking_late_events_total.
            var tolerance = TrackingOptions.Live().LateTolerance;
            var newest = DateTime.MinValue;
            var lateBound = 0;
            var lastByVehicle = new Dictionary<string, DateTime>(StringComparer.Ordinal);
            foreach (var msg in messages)
            {
                if (lastByVehicle.TryGetValue(msg.Vehicle, out var before) && msg.Tst < before - tolerance)
                {
                    lateBound++;
                }

                newest = msg.Tst > newest ? msg.Tst : newest;
                lastByVehicle[msg.Vehicle] = lastByVehicle.TryGetValue(msg.Vehicle, out var last) && last > msg.Tst ? last : msg.Tst;
            }

            await using var broker = await Mosquitto.StartAsync();
            await using var host = await TestHost.StartAsync(
                network: s_network.Value, configure: s => s.AddMqttSource(MqttSourceOptions.Parse(broker.Url.ToString(), [Topic])));
            await PollAsync(host, async () => MqttSource(await host.GetJsonAsync("api/health")).GetProperty("state").GetString() == "connected", "the MQTT source to connect");

            using var replay = FleetProcess.Start("replay", file, "--to", broker.Url.ToString().TrimEnd('/'), "--speed", "max", "--report-every", "1");
            await PollAsync(host, async () => MqttSource(await host.GetJsonAsync("api/health")).GetProperty("events").GetInt64() >= messages.Count,
                $"{messages.Count} events at the MQTT source (replay output: {replay.Output})");
            // Tracking's counters are published per batch (a flush every second).
            await PollAsync(host, async () => Metric(await host.Http.GetStringAsync(new Uri("metrics", UriKind.Relative), Ct), "fleet_tracking_events_total") >= messages.Count,
                "fleet_tracking_events_total to reach every event");

            var vehicles = (await host.GetJsonAsync("api/vehicles")).EnumerateArray().ToList();
            var alerts = (await host.GetJsonAsync("api/alerts")).EnumerateArray().ToList();
            var metrics = await host.Http.GetStringAsync(new Uri("metrics", UriKind.Relative), Ct);
            // Read after the alerts: the clock only moves forward, so every stale alert read was raised at or before it.
            var clock = host.App.Services.GetRequiredService<LivePipeline>().StreamClock;

            Assert.NotNull(clock);
            // The clock follows the recording's event time (March 2026), not the wall clock.
            Assert.True(clock < newest + TimeSpan.FromDays(1), $"stream clock {clock:o}, newest event time {newest:o}");
            Assert.True(vehicles.Count >= 10, $"{vehicles.Count} vehicles: {string.Join(", ", vehicles)}");
            var tracked = vehicles.Where(v => v.GetProperty("tripId").ValueKind == JsonValueKind.String && v.GetProperty("delaySeconds").ValueKind == JsonValueKind.Number).ToList();
            // Every vehicle of the slice is on an ongoing, scheduled journey (the topics say ongoing; the sample city's
            // schedule has them all), so each one shown has its trip and delay.
            Assert.True(tracked.Count == vehicles.Count, $"{tracked.Count} of {vehicles.Count} vehicles with a trip and a delay: {string.Join(", ", vehicles)}");
            // A vehicle is stale only when it went quiet for 120 s of event time while the stream clock moved on.
            var stale = alerts.Where(a => a.GetProperty("id").GetString()!.StartsWith("Stale:", StringComparison.Ordinal))
                .Select(a => a.GetProperty("vehicleId").GetString()!).ToList();
            var mayBeStale = lastByVehicle.Where(kv => clock!.Value - kv.Value > TimeSpan.FromSeconds(120)).Select(kv => kv.Key).ToHashSet(StringComparer.Ordinal);
            Assert.True(stale.All(mayBeStale.Contains), $"stale alerts for vehicles that reported within 120 s of the clock: {string.Join(", ", stale.Where(v => !mayBeStale.Contains(v)))}");
            // The pipeline's queue is reported, and drains once the input stops.
            Assert.True(Metric(metrics, "fleet_tracking_queued_events") >= 0, "fleet_tracking_queued_events missing from /metrics");
            await PollAsync(host, async () => Metric(await host.Http.GetStringAsync(new Uri("metrics", UriKind.Relative), Ct), "fleet_tracking_queued_events") == 0,
                "fleet_tracking_queued_events to drain to 0");
            var late = Metric(metrics, "fleet_tracking_late_events_total");
            Assert.True(late <= lateBound, $"{late} late events dropped; at most {lateBound} events are more than {tolerance.TotalSeconds} s behind their vehicle's newest");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData(60)] // the replay default
    [InlineData(0)] // the live default: nothing held
    public async Task LivePipeline_SourceFallsSilent_ClockMovesOnAfterTheLatenessWindowAndVehiclesGoStale(int latenessSeconds)
    {
        await using var cluster = new TrackingCluster(new FleetAkkaOptions());
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 21, 20, 0, 0, TimeSpan.Zero));
        var live = new LiveEvents(new LiveOptions(), new LiveEventsTests.RecordingTransport(), time, NullLogger<LiveEvents>.Instance);
        var options = new TrackingOptions { Lateness = TimeSpan.FromSeconds(latenessSeconds) };
        var pipeline = new LivePipeline(live, s_network.Value, time, followEventTime: true, options: options, cluster: cluster);
        var source = new SourceStatus("test", "mqtt");
        // A vehicle of the sample city on its trip (the first vehicle's first positions in the recording), at its
        // recorded times, months before the fake wall clock.
        var t0 = new DateTime(2026, 3, 2, 5, 15, 0, DateTimeKind.Utc);
        for (var i = 0; i < 5; i++)
        {
            pipeline.Ingest(Position(t0.AddSeconds(i), t0.AddDays(264).AddSeconds(i)), source);
        }

        pipeline.Flush();
        Assert.Equal(t0.AddSeconds(4), pipeline.StreamClock);
        Assert.Empty(live.Alerts());

        // Silent for less than the lateness window plus the stale time (120 s): the clock has not moved far enough.
        time.Advance(TimeSpan.FromSeconds(latenessSeconds + 100));
        pipeline.Flush();
        Assert.Empty(live.Alerts());

        // The lateness window, then more than 120 s of silence in event time: stale.
        time.Advance(TimeSpan.FromSeconds(40));
        pipeline.Flush();
        Assert.Equal(t0.AddSeconds(4 + 140), pipeline.StreamClock);
        var alert = Assert.Single(live.Alerts());
        Assert.Equal("Stale:0018/00408", alert.Id);
    }

    [Fact]
    public async Task LivePipeline_LiveOptions_PredictsFromAReportWithoutHoldingIt()
    {
        await using var cluster = new TrackingCluster(new FleetAkkaOptions());
        // The wall clock never moves here, so nothing that waits for time (a reorder window) can come out: with the
        // live options a report is tracked when it arrives and its predictions carry the ingest stamp of that report.
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 21, 20, 0, 0, TimeSpan.Zero));
        var live = new LiveEvents(new LiveOptions(), new LiveEventsTests.RecordingTransport(), time, NullLogger<LiveEvents>.Instance);
        var output = new ListOutput();
        var pipeline = new LivePipeline(live, s_network.Value, time, output: output, followEventTime: true, cluster: cluster);
        var source = new SourceStatus("test", "mqtt");
        var t0 = new DateTime(2026, 3, 2, 5, 15, 0, DateTimeKind.Utc);

        var report = Position(t0, t0);
        report.IngestTimestamp = 4242;
        pipeline.Ingest(report, source);
        pipeline.Flush();

        var predictions = output.Events.Where(d => d.Type == DerivedEventType.Prediction).ToList();
        Assert.NotEmpty(predictions);
        Assert.All(predictions, p => Assert.Equal(4242, p.IngestTimestamp));
        Assert.All(predictions, p => Assert.Equal("0018/00408", p.VehicleId));

        // The replay default (60 s held) says nothing yet for the same report.
        var held = new ListOutput();
        var replayLike = new LivePipeline(live, s_network.Value, time, output: held, followEventTime: true, options: new TrackingOptions(), cluster: cluster, region: "replay-like");
        replayLike.Ingest(report, source);
        replayLike.Flush();
        Assert.Empty(held.Events);
    }

    private static VehicleEvent Position(DateTime tst, DateTime received) => new()
    {
        Source = EventSource.Hfp,
        Type = EventType.Vp,
        Journey = JourneyType.Journey,
        Mode = TransportMode.Bus,
        VehicleId = "0018/00408",
        EventTime = tst,
        ReceiveTime = received,
        Latitude = 60.173999,
        Longitude = 24.945488,
        RouteId = "1027",
        DirectionId = 1,
        StartTimeSeconds = (7 * 3600) + (12 * 60),
        OperatingDay = new DateOnly(2026, 3, 2),
        Speed = 7.1f,
        Heading = 86,
        DelaySeconds = 25,
    };

    private static JsonElement MqttSource(JsonElement health) =>
        Assert.Single(health.GetProperty("sources").EnumerateArray(), s => s.GetProperty("kind").GetString() == "mqtt");

    private static double Metric(string metrics, string name) => PrometheusText.Parse(metrics).GetValueOrDefault(name, -1);

    // The broker, the replay process and the host are separate processes and threads: poll with a deadline and name
    // what was awaited.
    private static async Task PollAsync(TestHost host, Func<Task<bool>> condition, string what)
    {
        _ = host;
        var until = DateTime.UtcNow + Deadline;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < until, $"timed out after {Deadline.TotalSeconds} s waiting for {what}");
            await Task.Delay(100, Ct);
        }
    }
}
