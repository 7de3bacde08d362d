using System.Collections.Concurrent;
using Fleet.Dashboard.Live;
using Fleet.Ingest.Events;
using Fleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fleet.Dashboard.Tests;

public sealed class LiveEventsTests
{
    private static readonly DateTime T0 = new(2026, 3, 2, 6, 0, 0, DateTimeKind.Utc);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(T0));
    private readonly RecordingTransport _transport = new();
    private readonly LiveOptions _options = new();
    private readonly LiveEvents _live;

    public LiveEventsTests() => _live = new LiveEvents(_options, _transport, _time, NullLogger<LiveEvents>.Instance);

    internal static VehicleState Vehicle(string id, string route = "10", double lat = 60.17, double lon = 24.94, int? delay = 0, DateTime? at = null) =>
        new(id, route, 0, $"trip-{id}", lat, lon, 90, 8, delay, TransportMode.Bus, null, at ?? T0);

    internal static ArrivalPrediction Prediction(string stop, string trip, string route = "10", int minutes = 5) =>
        new(stop, trip, "0018/00001", route, 3, T0.AddMinutes(minutes), T0.AddMinutes(minutes - 1), T0.AddMinutes(minutes + 2), T0.AddMinutes(minutes - 1), T0);

    [Fact]
    public void Subscribe_Stop_PushesOnlyThatStopsPredictions()
    {
        _live.Connect("a");
        _live.Subscribe("a", Sub("stop", "S1"));
        _live.PublishPrediction(Prediction("S1", "t1"));
        _live.PublishPrediction(Prediction("S2", "t2"));
        _live.PublishVehicle(Vehicle("v1"));

        _live.Flush();

        var sent = _transport.For("a");
        var predictions = Assert.Single(sent);
        Assert.Equal(LiveMethods.Predictions, predictions.Method);
        var p = Assert.Single((List<ArrivalPrediction>)predictions.Payload);
        Assert.Equal(("S1", "t1"), (p.StopId, p.TripId));
    }

    [Fact]
    public void PublishPrediction_NoSubscriberYet_StoredAndSentWhenOneSubscribesThenChangesFollow()
    {
        // Nobody follows S1 when its prediction is published: it is stored (the API and a later initial view read
        // it), not queued for a push. A subscriber then gets it as its initial view, and later changes as pushes.
        _live.Connect("a");
        _live.PublishPrediction(Prediction("S1", "t1", minutes: 5));
        _live.Flush();
        Assert.Empty(_transport.For("a"));
        Assert.Single(_live.PredictionsAt("S1"));

        _live.Subscribe("a", Sub("stop", "S1"));
        _live.Flush();
        _live.PublishPrediction(Prediction("S1", "t1", minutes: 7));
        _live.Flush();

        var pushes = _transport.For("a").Where(m => m.Method == LiveMethods.Predictions)
            .Select(m => Assert.Single((List<ArrivalPrediction>)m.Payload).Predicted).ToList();
        Assert.Equal([T0.AddMinutes(5), T0.AddMinutes(7)], pushes);
    }

    [Fact]
    public void Subscribe_Bbox_PushesVehiclesInsideOnly()
    {
        _live.Connect("a");
        _live.Subscribe("a", Sub("bbox", "24.9,60.1,25.0,60.2"));
        _live.PublishVehicle(Vehicle("in", lat: 60.15, lon: 24.95));
        _live.PublishVehicle(Vehicle("out", lat: 61.5, lon: 24.95));

        _live.Flush();

        var batch = Assert.Single(_transport.For("a"));
        Assert.Equal(["in"], ((List<VehicleState>)batch.Payload).Select(v => v.Id));
    }

    [Fact]
    public void Subscribe_ExistingState_IsSentAsInitialView()
    {
        _live.PublishVehicle(Vehicle("v1", route: "7"));
        _live.PublishVehicle(Vehicle("v2", route: "8"));
        _live.Flush();
        _live.Connect("a");

        _live.Subscribe("a", Sub("route", "7"));
        _live.Flush();

        var batch = Assert.Single(_transport.For("a"));
        Assert.Equal(["v1"], ((List<VehicleState>)batch.Payload).Select(v => v.Id));
    }

    [Fact]
    public void Flush_ChangesWithinInterval_AtMostOneBatchPerInterval()
    {
        _live.Connect("a");
        _live.Subscribe("a", Sub("route", "10"));
        _live.PublishVehicle(Vehicle("v1", lat: 60.0));
        _live.Flush();
        Assert.Single(_transport.For("a"));

        _time.Advance(TimeSpan.FromMilliseconds(100));
        _live.PublishVehicle(Vehicle("v1", lat: 60.1));
        _live.Flush();
        _time.Advance(TimeSpan.FromMilliseconds(100));
        _live.PublishVehicle(Vehicle("v1", lat: 60.2));
        _live.Flush();
        Assert.Single(_transport.For("a"));

        _time.Advance(TimeSpan.FromMilliseconds(50));
        _live.Flush();

        var sent = _transport.For("a");
        Assert.Equal(2, sent.Count);
        // The second batch carries the latest state only (coalesced), not the intermediate 60.1.
        var v = Assert.Single((List<VehicleState>)sent[1].Payload);
        Assert.Equal(60.2, v.Latitude);
    }

    [Fact]
    public void PublishVehicle_IdenticalState_PushesNothing()
    {
        _live.Connect("a");
        _live.Subscribe("a", Sub("vehicle", "v1"));
        _live.PublishVehicle(Vehicle("v1"));
        _live.Flush();
        _time.Advance(TimeSpan.FromSeconds(1));

        _live.PublishVehicle(Vehicle("v1"));
        _live.Flush();

        Assert.Single(_transport.For("a"));
    }

    [Fact]
    public void Flush_SlowClient_MissesBatchesWithoutDelayingOthers()
    {
        _live.Connect("slow");
        _live.Connect("fast");
        _live.Subscribe("slow", Sub("route", "10"));
        _live.Subscribe("fast", Sub("route", "10"));
        var stuck = _transport.Block("slow");

        for (var i = 0; i < 5; i++)
        {
            _live.PublishVehicle(Vehicle("v1", lat: 60 + (i / 100.0)));
            _live.Flush();
            _time.Advance(TimeSpan.FromMilliseconds(250));
        }

        // The fast client got one batch per interval; the slow one is still in its first send.
        Assert.Equal(5, _transport.For("fast").Count);
        Assert.Single(_transport.For("slow"));
        Assert.True(_live.Metrics.MissedBatches >= 1, "a missed batch of the slow client is counted");

        // Completes the stuck send; its continuation (clearing the busy flag) runs inline, before SetResult returns.
        stuck.SetResult();
        _live.Flush();

        var slow = _transport.For("slow");
        Assert.Equal(2, slow.Count);
        Assert.Equal(60.04, Assert.Single((List<VehicleState>)slow[1].Payload).Latitude);
    }

    [Fact]
    public void PublishPrediction_VehicleBatchNotDue_IsPushedAtOnce()
    {
        _live.Connect("a");
        _live.Subscribe("a", Sub("route", "10"));
        _live.PublishVehicle(Vehicle("v1", lat: 60.0));
        _live.Flush();
        _time.Advance(TimeSpan.FromMilliseconds(10));

        // 10 ms later the vehicle batch is not due (250 ms), but a prediction does not wait for it.
        _live.PublishVehicle(Vehicle("v1", lat: 60.1));
        _live.PublishPrediction(Prediction("S1", "t1"));
        _live.Flush();

        var sent = _transport.For("a");
        Assert.Equal([LiveMethods.Vehicles, LiveMethods.Predictions], sent.Select(s => s.Method));
        _time.Advance(_options.BatchInterval);
        _live.Flush();
        Assert.Equal(60.1, Assert.Single((List<VehicleState>)_transport.For("a")[^1].Payload).Latitude);
    }

    [Fact]
    public void PublishPrediction_PreviousPredictionPushStillWriting_FollowsCoalescedWhenItCompletes()
    {
        _live.Connect("a");
        _live.Subscribe("a", Sub("stop", "S1"));
        var stuck = _transport.Block("a");
        _live.PublishPrediction(Prediction("S1", "t1"));
        _live.Flush();

        _live.PublishPrediction(Prediction("S1", "t2", minutes: 6));
        _live.PublishPrediction(Prediction("S1", "t2", minutes: 7));
        _live.Flush();
        Assert.Single(_transport.For("a"));
        Assert.Equal(1, _live.ClientStats("a")!.Value.MissedBatches);

        // Completing the stuck push sends what queued meanwhile (the latest t2 only), without another flush.
        _transport.Unblock("a");
        stuck.SetResult();

        var sent = _transport.For("a");
        Assert.Equal(2, sent.Count);
        var p = Assert.Single((List<ArrivalPrediction>)sent[1].Payload);
        Assert.Equal(("t2", T0.AddMinutes(7)), (p.TripId, p.Predicted));
    }

    [Fact]
    public void Flush_ClientStopsReading_PendingStaysUnderBoundAndClientIsDisconnectedAfterTimeout()
    {
        _options.MaxPendingPerClient = 100;
        var aborted = 0;
        _live.Connect("stuck", () => aborted++);
        _live.Connect("ok");
        _live.Subscribe("stuck", Sub("route", "10"));
        _live.Subscribe("ok", Sub("route", "10"));
        _transport.Block("stuck");

        for (var step = 0; step < 20; step++)
        {
            for (var i = 0; i < 50; i++)
            {
                _live.PublishVehicle(Vehicle($"v{step}-{i}"));
            }

            _live.Flush();
            _time.Advance(_options.BatchInterval);
        }

        var stats = _live.ClientStats("stuck")!.Value;
        Assert.True(stats.PendingItems <= 100, $"{stats.PendingItems} pending");
        Assert.Equal(1, stats.SendsInFlight);
        Assert.True(stats.MissedBatches >= 1);
        Assert.True(_live.Metrics.Rejected(RejectReason.ClientPendingLimit) > 0);
        Assert.Equal(0, aborted);
        // The reading client got every vehicle: 20 batches of 50.
        Assert.Equal(1000, _transport.For("ok").Sum(s => ((List<VehicleState>)s.Payload).Count));

        _time.Advance(_options.SlowClientTimeout);
        _live.Flush();
        _live.Flush();

        Assert.Equal(1, aborted);
        Assert.Equal(1, _live.Metrics.SlowClientsDisconnected);
        // Forgotten at once, with its queue; the reading client stays.
        Assert.Null(_live.ClientStats("stuck"));
        Assert.NotNull(_live.ClientStats("ok"));
        Assert.DoesNotContain("stuck", _live.ClientIds);
    }

    [Fact]
    public void Unsubscribe_Route_StopsItsPushes()
    {
        _live.Connect("a");
        _live.Subscribe("a", Sub("route", "10"));
        _live.Subscribe("a", Sub("stop", "S9"));
        Assert.True(_live.Unsubscribe("a", Sub("route", "10")));

        _live.PublishVehicle(Vehicle("v1"));
        _live.PublishPrediction(Prediction("S1", "t1"));
        _live.PublishPrediction(Prediction("S9", "t9"));
        _live.Flush();

        var sent = Assert.Single(_transport.For("a"));
        Assert.Equal(["S9"], ((List<ArrivalPrediction>)sent.Payload).Select(p => p.StopId));
    }

    [Fact]
    public void RemoveVehicle_Subscriber_IsTold()
    {
        _live.Connect("a");
        _live.Subscribe("a", Sub("vehicle", "v1"));
        _live.PublishVehicle(Vehicle("v1"));
        _live.Flush();
        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.True(_live.RemoveVehicle("v1"));
        _live.Flush();

        var last = _transport.For("a")[^1];
        Assert.Equal(LiveMethods.Removed, last.Method);
        Assert.Equal(["v1"], (List<string>)last.Payload);
        Assert.Null(_live.Vehicle("v1"));
    }

    [Fact]
    public void Flush_QuietVehicle_ExpiresAfterTtl()
    {
        _live.PublishVehicle(Vehicle("v1"));
        _live.Flush();
        _time.Advance(_options.VehicleTtl + TimeSpan.FromSeconds(2));

        _live.Flush();

        Assert.Equal(0, _live.VehicleCount);
        Assert.Equal(1, _live.Metrics.Expired);
    }

    [Fact]
    public void PublishVehicle_BeyondLimit_IsRejectedAndCounted()
    {
        _options.MaxVehicles = 2;
        Assert.True(_live.PublishVehicle(Vehicle("v1")));
        Assert.True(_live.PublishVehicle(Vehicle("v2")));

        Assert.False(_live.PublishVehicle(Vehicle("v3")));
        Assert.True(_live.PublishVehicle(Vehicle("v1", lat: 61)));

        Assert.Equal(2, _live.VehicleCount);
        Assert.Equal(1, _live.Metrics.Rejected(RejectReason.VehicleLimit));
    }

    [Fact]
    public void Subscribe_BeyondLimit_Throws()
    {
        _options.MaxSubscriptionsPerClient = 2;
        _live.Connect("a");
        _live.Subscribe("a", Sub("stop", "1"));
        _live.Subscribe("a", Sub("stop", "2"));
        _live.Subscribe("a", Sub("stop", "2"));

        var ex = Assert.Throws<ArgumentException>(() => _live.Subscribe("a", Sub("stop", "3")));
        Assert.Contains("at most 2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Flush_MoreThanMaxBatchItems_SplitsAcrossBatches()
    {
        _options.MaxBatchItems = 3;
        _live.Connect("a");
        _live.Subscribe("a", Sub("route", "10"));
        for (var i = 0; i < 5; i++)
        {
            _live.PublishVehicle(Vehicle($"v{i}"));
        }

        _live.Flush();
        _time.Advance(_options.BatchInterval);
        _live.Flush();

        var sent = _transport.For("a");
        Assert.Equal([3, 2], sent.Select(s => ((List<VehicleState>)s.Payload).Count));
    }

    [Fact]
    public void PublishAlert_GlobalAlert_ReachesEverySubscribedClient()
    {
        _live.Connect("a");
        _live.Subscribe("a", Sub("stop", "S9"));
        _live.PublishAlert(new LiveAlert("x", AlertSeverity.Warning, "source down", null, null, null, T0));
        _live.PublishAlert(new LiveAlert("y", AlertSeverity.Info, "route 5 bunching", "5", null, null, T0));

        _live.Flush();

        var batch = Assert.Single(_transport.For("a"));
        Assert.Equal(["x"], ((List<LiveAlert>)batch.Payload).Select(a => a.Id));
    }

    [Theory]
    [InlineData("bus", "1", "unknown kind")]
    [InlineData("stop", "", "must not be empty")]
    [InlineData("bbox", "1,2,3", "minLon,minLat,maxLon,maxLat")]
    [InlineData("bbox", "25,60,24,61", "minLon <= maxLon")]
    [InlineData("bbox", "a,60,24,61", "not a number")]
    public void SubscriptionTryParse_Invalid_NamesTheProblem(string kind, string id, string expected)
    {
        Assert.False(Subscription.TryParse(kind, id, out _, out var error));
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void FromEvent_HfpPosition_MapsFieldsAndJourneyKey()
    {
        var e = VehicleEvent.Empty;
        e.Type = EventType.Vp;
        e.Mode = TransportMode.Tram;
        e.VehicleId = "0040/00412";
        e.Latitude = 60.1;
        e.Longitude = 24.9;
        e.Heading = 180;
        e.Speed = 5.5f;
        e.DelaySeconds = 42;
        e.RouteId = "1004";
        e.DirectionId = 1;
        e.OperatingDay = new DateOnly(2026, 3, 2);
        e.StartTimeSeconds = (25 * 3600) + (5 * 60);
        e.EventTime = T0;

        var v = VehicleState.FromEvent(e, TimeSpan.FromHours(1));

        Assert.NotNull(v);
        Assert.Equal("1004:1:2026-03-02:2505", v.TripId);
        Assert.Equal((180.0, 5.5, 42), (v.Heading, v.Speed, v.DelaySeconds));
        Assert.Equal(T0.AddHours(1), v.Updated);
        e.Type = EventType.Dep;
        Assert.Null(VehicleState.FromEvent(e));
    }

    private static Subscription Sub(string kind, string id) =>
        Subscription.TryParse(kind, id, out var s, out var error) ? s : throw new ArgumentException(error);

    /// <summary>Records sends; a client can be blocked so its sends do not complete.</summary>
    internal sealed class RecordingTransport : ILiveTransport
    {
        private readonly ConcurrentDictionary<string, List<(string Method, object Payload)>> _sent = new();
        private readonly ConcurrentDictionary<string, TaskCompletionSource> _blocks = new();

        public TaskCompletionSource Block(string clientId) =>
            _blocks.GetOrAdd(clientId, _ => new TaskCompletionSource());

        /// <summary>Later sends to the client complete at once (an already blocked one stays blocked).</summary>
        public void Unblock(string clientId) => _blocks.TryRemove(clientId, out _);

        public List<(string Method, object Payload)> For(string clientId)
        {
            var list = _sent.GetOrAdd(clientId, _ => []);
            lock (list)
            {
                return [.. list];
            }
        }

        public ILiveClient Client(string clientId) => new Recorder(this, clientId);

        private Task Record(string clientId, string method, object payload)
        {
            var list = _sent.GetOrAdd(clientId, _ => []);
            lock (list)
            {
                list.Add((method, payload));
            }

            return _blocks.TryGetValue(clientId, out var block) ? block.Task : Task.CompletedTask;
        }

        // Records each call under the name the hub sends it by.
        private sealed class Recorder(RecordingTransport transport, string clientId) : ILiveClient
        {
            public Task Vehicles(IReadOnlyList<VehicleState> vehicles) => transport.Record(clientId, LiveMethods.Vehicles, vehicles);

            public Task Removed(IReadOnlyList<string> vehicleIds) => transport.Record(clientId, LiveMethods.Removed, vehicleIds);

            public Task Predictions(IReadOnlyList<ArrivalPrediction> predictions) =>
                transport.Record(clientId, LiveMethods.Predictions, predictions);

            public Task Withdrawn(IReadOnlyList<PredictionWithdrawal> withdrawals) =>
                transport.Record(clientId, LiveMethods.Withdrawn, withdrawals);

            public Task Alerts(IReadOnlyList<LiveAlert> alerts) => transport.Record(clientId, LiveMethods.Alerts, alerts);
        }
    }
}
