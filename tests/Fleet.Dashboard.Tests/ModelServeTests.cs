using System.Text.Json;
using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.Live;
using Fleet.Dashboard.Sources;
using Fleet.Testing;
using Fleet.Tracking.Output;
using Fleet.Tracking.Vehicles;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fleet.Dashboard.Tests;

/// <summary>serve with the arrival model: ranges reach the live state, the hub and the REST API.</summary>
public sealed class ModelServeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Sample(string name) => Path.Combine(RepoPaths.SampleData, name);

    [Fact]
    public void TrackingOutput_PredictionWithRange_KeepsLowAndHigh()
    {
        var live = new LiveEvents(new LiveOptions(), new LiveEventsTests.RecordingTransport(), TimeProvider.System, NullLogger<LiveEvents>.Instance);
        var shift = TimeSpan.FromHours(2);
        var output = new LiveTrackingOutput(live, () => shift);
        var t = new DateTime(2026, 3, 2, 6, 0, 0, DateTimeKind.Utc);

        output.Publish(new DerivedEvent
        {
            Type = DerivedEventType.Prediction, Time = t, VehicleId = "0018/00001", TripId = "T1", RouteId = "10", StopId = "S1", StopSequence = 3,
            Predicted = t.AddMinutes(4), PredictedLow = t.AddMinutes(3), PredictedHigh = t.AddMinutes(6), Scheduled = t.AddMinutes(3),
        });
        output.Publish(new DerivedEvent
        {
            Type = DerivedEventType.Prediction, Time = t, VehicleId = "0018/00001", TripId = "T1", RouteId = "10", StopId = "S2", StopSequence = 4,
            Predicted = t.AddMinutes(7),
        });
        Assert.Empty(live.PredictionsAt("S1")); // a round is published whole, at its end
        output.Publish(new DerivedEvent { Type = DerivedEventType.PredictionRound, Time = t, VehicleId = "0018/00001", TripId = "T1" });

        var ranged = Assert.Single(live.PredictionsAt("S1"));
        Assert.Equal((t.AddMinutes(3) + shift, t.AddMinutes(4) + shift, t.AddMinutes(6) + shift), (ranged.Low, ranged.Predicted, ranged.High));
        var point = Assert.Single(live.PredictionsAt("S2"));
        Assert.Equal((point.Predicted, point.Predicted), (point.Low, point.High));
    }

    [Fact]
    public void ArrivalPredictors_ModelMissingOrInvalid_FallsBackToDelay()
    {
        var network = GtfsNetwork.Load(Sample("gtfs.zip"));
        var missing = new ArrivalPredictors(new ServeOptions { ModelPath = Path.Combine(Path.GetTempPath(), "no-such-model.bin") }, NullLogger<ArrivalPredictors>.Instance, network);
        var invalid = new ArrivalPredictors(new ServeOptions { ModelPath = Sample("gtfs.zip") }, NullLogger<ArrivalPredictors>.Instance, network);
        var noSchedule = new ArrivalPredictors(new ServeOptions { ModelPath = Sample("model.bin") }, NullLogger<ArrivalPredictors>.Instance);
        var good = new ArrivalPredictors(new ServeOptions { ModelPath = Sample("model.bin") }, NullLogger<ArrivalPredictors>.Instance, network);

        Assert.Equal(["delay", "delay", "delay", "model"], new[] { missing, invalid, noSchedule, good }.Select(p => p.Kind));
        Assert.IsType<DelayCarriedForwardPredictor>(missing.Create());
        Assert.IsType<ModelArrivalPredictor>(good.Create());
        Assert.NotSame(good.Create(), good.Create()); // a fresh predictor (fresh statistics) per tracking run
    }

    [Fact]
    public void ArrivalPredictors_RetrainEvery_EachRunLearnsAndMetricsShowIt()
    {
        var network = GtfsNetwork.Load(Sample("gtfs.zip"));
        var learning = new ArrivalPredictors(new ServeOptions { ModelPath = Sample("model.bin") }, NullLogger<ArrivalPredictors>.Instance, network);
        var off = new ArrivalPredictors(new ServeOptions { ModelPath = Sample("model.bin"), RetrainEvery = TimeSpan.Zero }, NullLogger<ArrivalPredictors>.Instance, network);

        var predictor = Assert.IsType<ModelArrivalPredictor>(learning.Create());
        var offPredictor = Assert.IsType<ModelArrivalPredictor>(off.Create());

        Assert.Equal(TimeSpan.FromHours(1), Assert.IsType<Fleet.Predict.Online.ModelRetrainer>(predictor.Retrainer).Options.Every);
        Assert.Null(offPredictor.Retrainer);
        var metrics = MeterReadings.Collect(learning);
        Assert.Equal(0, metrics["fleet_predict_retrains_total"]);
        Assert.Equal(0, metrics["fleet_predict_model_swaps_total"]);
        Assert.False(metrics.ContainsKey("fleet_predict_retrain_validation_mae_seconds{model=\"new\"}"), "no retrain has finished yet");
        Assert.Empty(MeterReadings.Collect(off));
    }

    [Theory]
    [InlineData("1h", 3600)]
    [InlineData("90m", 5400)]
    [InlineData("900s", 900)]
    [InlineData("0.5h", 1800)]
    [InlineData("0", 0)]
    public void ParseDuration_Valid_Seconds(string text, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), Fleet.Dashboard.Cli.ServeCommand.ParseDuration(text));

    [Theory]
    [InlineData("")]
    [InlineData("1")]
    [InlineData("h")]
    [InlineData("-1h")]
    [InlineData("1d")]
    [InlineData("NaNh")]
    public void ParseDuration_Malformed_Null(string text) => Assert.Null(Fleet.Dashboard.Cli.ServeCommand.ParseDuration(text));

    [Fact]
    [Trait("Category", "Integration")]
    public async Task Serve_SampleCityWithModel_HubAndRestShowRanges()
    {
        var network = GtfsNetwork.Load(Sample("gtfs.zip"));
        await using var host = await TestHost.StartAsync(network: network, configure: s =>
        {
            s.AddSingleton(new ArrivalPredictors(new ServeOptions { ModelPath = Sample("model.bin") }, NullLogger<ArrivalPredictors>.Instance, network));
            s.AddReplay(new ReplayOptions { Path = Sample("recording.hfp.gz"), Speed = ReplayOptions.MaxSpeed });
        });
        await using var hub = await host.ConnectAsync();
        await hub.InvokeAsync("Subscribe", ["route", "1058"], Ct);

        // Hub: the first pushed prediction with a spread.
        JsonElement pushed = default;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            timeout.CancelAfter(TimeSpan.FromSeconds(90));
            while (pushed.ValueKind == JsonValueKind.Undefined)
            {
                var m = await hub.Messages.ReadAsync(timeout.Token);
                if (m.Target != LiveMethods.Predictions)
                {
                    continue;
                }

                foreach (var p in m.Arguments[0].EnumerateArray())
                {
                    if (p.GetProperty("low").GetDateTime() < p.GetProperty("high").GetDateTime())
                    {
                        pushed = p.Clone();
                        break;
                    }
                }
            }
        }

        Assert.Equal("1058", pushed.GetProperty("routeId").GetString());
        AssertRange(pushed);
        Assert.True(pushed.TryGetProperty("scheduled", out var scheduled) && scheduled.ValueKind == JsonValueKind.String);

        // REST: some stop of the route lists a predicted arrival with its range beside the scheduled time.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        JsonElement? row = null;
        while (row is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "no ranged arrival in /api/stops/{id}/arrivals within 60 s");
            foreach (var p in host.Live.AllPredictions().Where(p => p.Low < p.High).Take(20))
            {
                var body = await host.GetJsonAsync($"api/stops/{p.StopId}/arrivals");
                foreach (var a in body.GetProperty("arrivals").EnumerateArray())
                {
                    if (a.TryGetProperty("low", out var low) && low.ValueKind == JsonValueKind.String && a.GetProperty("low").GetDateTime() < a.GetProperty("high").GetDateTime())
                    {
                        row = a.Clone();
                        break;
                    }
                }

                if (row is not null)
                {
                    break;
                }
            }
        }

        AssertRange(row.Value);
        Assert.Equal(JsonValueKind.String, row.Value.GetProperty("scheduled").ValueKind);
    }

    private static void AssertRange(JsonElement p)
    {
        var low = p.GetProperty("low").GetDateTime();
        var predicted = p.GetProperty("predicted").GetDateTime();
        var high = p.GetProperty("high").GetDateTime();
        Assert.True(low <= predicted && predicted <= high && low < high, $"range {low:O} <= {predicted:O} <= {high:O}");
    }
}
