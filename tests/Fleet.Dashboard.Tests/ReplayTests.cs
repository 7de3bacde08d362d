using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Fleet.Dashboard.Live;
using Fleet.Dashboard.Sources;
using Fleet.Ingest.Recording;
using Fleet.Tracking.Output;
using Microsoft.Extensions.DependencyInjection;

namespace Fleet.Dashboard.Tests;

[Trait("Category", "Integration")]
public sealed class ReplayTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Three buses, five positions each, one second apart, recorded on 2023-10-29 (HFP v2 topic and VP payload).
    private static string WriteRecording(int vehicles = 3, int positions = 5, string name = "rec.hfp.gz")
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("fleet-replay").FullName, name);
        var t0 = new DateTime(2023, 10, 29, 13, 0, 0, DateTimeKind.Utc);
        using (var w = RecordingWriter.Create(path))
        {
            for (var i = 0; i < positions; i++)
            {
                for (var v = 1; v <= vehicles; v++)
                {
                    var t = t0.AddSeconds(i);
                    var topic = $"/hfp/v2/journey/ongoing/vp/bus/0018/0000{v}/1064/1/Itä-Pakila/15:00/1353117/0/60;24/29/45/98";
                    var payload = $$$"""{"VP":{"desi":"64","dir":"1","oper":18,"veh":{{{v}}},"tst":"{{{t:yyyy-MM-ddTHH:mm:ss.fffZ}}}","tsi":0,"spd":8.5,"hdg":90,"lat":{{{60.2 + (v * 0.01):F4}}},"long":{{{24.9 + (i * 0.001):F4}}},"acc":0,"dl":-30,"odo":0,"drst":0,"oday":"2023-10-29","jrn":1,"line":1,"start":"15:00","loc":"GPS","stop":null,"route":"1064","occu":0}}""";
                    w.Write(t, topic, Encoding.UTF8.GetBytes(payload));
                }
            }
        }

        return path;
    }

    [Fact]
    public async Task Replay_StartAtHalf_SkipsTheFirstHalfOfTheFile()
    {
        // 100 buses x 200 positions (about 9 MB of plain text, so the reader's position moves in small steps).
        var path = WriteRecording(vehicles: 100, positions: 200, name: "rec.hfp");
        await using var host = await TestHost.StartAsync(configure: s => s.AddReplay(new ReplayOptions
        {
            Path = path, Speed = ReplayOptions.MaxSpeed, ShiftToNow = false, StartAt = 0.5,
        }));

        var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            using var state = JsonDocument.Parse(await host.Http.GetStringAsync(new Uri("/api/replay", UriKind.Relative), Ct));
            if (state.RootElement.GetProperty("finished").GetBoolean())
            {
                break;
            }

            Assert.True(DateTime.UtcNow < until, $"replay not finished: {state.RootElement}");
            await Task.Delay(50, Ct);
        }

        var metrics = FaultTests.ParseMetrics(await host.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative), Ct));
        var parsed = metrics["fleet_replay_parsed_total"];
        Assert.True(parsed is > 20_000 * 0.3 and < 20_000 * 0.7, $"{parsed} of 20,000 lines parsed after starting half way");
    }

    [Fact]
    public async Task Replay_CorruptGzipMidway_SaysWhyInHealth_AndTheHostKeepsServing()
    {
        var path = WriteRecording(vehicles: 100, positions: 200);
        var bytes = await File.ReadAllBytesAsync(path, Ct);
        Array.Fill(bytes, (byte)0xFF, bytes.Length / 2, 4096); // a reserved deflate block type: the stream breaks there
        await File.WriteAllBytesAsync(path, bytes, Ct);
        await using var host = await TestHost.StartAsync(configure: s => s.AddReplay(new ReplayOptions { Path = path, Speed = ReplayOptions.MaxSpeed }));

        JsonElement source = default;
        var until = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < until)
        {
            source = Assert.Single((await host.GetJsonAsync("api/health")).GetProperty("sources").EnumerateArray());
            if (source.TryGetProperty("lastError", out var e) && e.ValueKind == JsonValueKind.String)
            {
                break;
            }

            await Task.Delay(100, Ct);
        }

        Assert.Contains("compress", source.GetProperty("lastError").GetString(), StringComparison.Ordinal);
        Assert.True(source.GetProperty("events").GetInt64() > 0, "the lines before the damage were replayed");
        using var again = await host.Http.GetAsync(new Uri("/api/health", UriKind.Relative), Ct); // still serving
        Assert.Equal(System.Net.HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task Replay_Recording_PublishesVehiclesWithTimesShiftedToNow()
    {
        var path = WriteRecording();
        var started = DateTime.UtcNow;
        await using var host = await TestHost.StartAsync(configure: s => s.AddReplay(new ReplayOptions { Path = path, Speed = 50 }));
        await using var hub = await host.ConnectAsync();
        await hub.InvokeAsync("Subscribe", ["route", "1064"], Ct);

        var seen = new Dictionary<string, JsonElement>();
        while (seen.Count < 3 || seen.Values.Any(v => v.GetProperty("longitude").GetDouble() < 24.9039))
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            var m = await hub.Messages.ReadAsync(timeout.Token);
            foreach (var v in m.Arguments[0].EnumerateArray())
            {
                seen[v.GetProperty("id").GetString()!] = v.Clone();
            }
        }

        var health = await host.GetJsonAsync("api/health");
        var replay = await host.GetJsonAsync("api/replay");

        Assert.Equal(["0018/00001", "0018/00002", "0018/00003"], seen.Keys.Order());
        var v1 = seen["0018/00001"];
        Assert.Equal(30, v1.GetProperty("delaySeconds").GetInt32());
        Assert.Equal("1064:0:2023-10-29:1500", v1.GetProperty("tripId").GetString());
        // Recorded in 2023, shown as now: the shift moves the first line to the replay's start.
        Assert.InRange(v1.GetProperty("updated").GetDateTime(), started.AddSeconds(-5), DateTime.UtcNow.AddSeconds(5));
        var source = Assert.Single(health.GetProperty("sources").EnumerateArray());
        Assert.Equal("replay", source.GetProperty("kind").GetString());
        Assert.Equal(15, source.GetProperty("events").GetInt64());
        Assert.Equal("rec.hfp.gz", replay.GetProperty("file").GetString());
    }

    [Fact]
    public async Task ReplayApi_Controls_ValidateAndApply()
    {
        var path = WriteRecording(positions: 200);
        await using var host = await TestHost.StartAsync(configure: s => s.AddReplay(new ReplayOptions { Path = path, Speed = 1, Loop = true }));

        using var pause = await host.Http.PostAsJsonAsync(new Uri("api/replay", UriKind.Relative), new { playing = false, speed = 10 }, Ct);
        using var badSpeed = await host.Http.PostAsJsonAsync(new Uri("api/replay", UriKind.Relative), new { speed = 0 }, Ct);
        using var badPosition = await host.Http.PostAsJsonAsync(new Uri("api/replay", UriKind.Relative), new { position = 1.5 }, Ct);
        var state = await host.GetJsonAsync("api/replay");

        Assert.Equal(HttpStatusCode.OK, pause.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, badSpeed.StatusCode);
        Assert.Contains("speed must be > 0", await badSpeed.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, badPosition.StatusCode);
        Assert.False(state.GetProperty("playing").GetBoolean());
        Assert.Equal(10, state.GetProperty("speed").GetDouble());
    }

    [Fact]
    public async Task ReplayApi_NotReplaying_Returns404()
    {
        await using var host = await TestHost.StartAsync();

        using var response = await host.Http.GetAsync(new Uri("api/replay", UriKind.Relative), Ct);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public void TrackingOutput_PredictionArrivalAlert_MapToLiveState()
    {
        var live = new LiveEvents(new LiveOptions(), new LiveEventsTests.RecordingTransport(), TimeProvider.System,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<LiveEvents>.Instance);
        var shift = TimeSpan.FromDays(1);
        var output = new LiveTrackingOutput(live, () => shift);
        var t = new DateTime(2026, 3, 2, 6, 0, 0, DateTimeKind.Utc);

        output.Publish(new DerivedEvent { Type = DerivedEventType.Prediction, Time = t, VehicleId = "0018/00001", TripId = "T1", RouteId = "10", StopId = "S1", StopSequence = 3, Predicted = t.AddMinutes(4), Scheduled = t.AddMinutes(3) });
        output.Publish(new DerivedEvent { Type = DerivedEventType.Prediction, Time = t, VehicleId = "0018/00001", TripId = "T1", RouteId = "10", StopId = "S2", StopSequence = 4, Predicted = t.AddMinutes(6) });
        output.Publish(new DerivedEvent { Type = DerivedEventType.PredictionRound, Time = t, VehicleId = "0018/00001", TripId = "T1" });
        output.Publish(new DerivedEvent { Type = DerivedEventType.Arrival, Time = t.AddMinutes(4), VehicleId = "0018/00001", TripId = "T1", StopId = "S1" });
        output.Publish(new DerivedEvent { Type = DerivedEventType.Alert, Time = t, VehicleId = "0018/00001", RouteId = "10", Kind = AlertKind.SevereDelay, DelaySeconds = 420 });

        Assert.Empty(live.PredictionsAt("S1"));
        var p = Assert.Single(live.PredictionsAt("S2"));
        Assert.Equal(t.AddMinutes(6) + shift, p.Predicted);
        var alert = Assert.Single(live.Alerts());
        Assert.Equal((AlertSeverity.Severe, "vehicle 0018/00001 (route 10) is 7 min late"), (alert.Severity, alert.Text));

        output.Publish(new DerivedEvent { Type = DerivedEventType.Alert, Time = t.AddMinutes(5), VehicleId = "0018/00001", RouteId = "10", Kind = AlertKind.SevereDelay, Cleared = true });

        Assert.Empty(live.Alerts());
    }
}
