using Fleet.Ingest.Events;
using Fleet.Tracking.Network;
using Fleet.Tracking.Output;
using Fleet.Tracking.Vehicles;

namespace Fleet.Tracking.Tests;

public sealed class NetworkTrackerTests
{
    private const int Start = 8 * 3600;

    private static List<DerivedEvent> Track(TestRoute route, params (string Vehicle, int Start, int Late)[] runs)
    {
        var options = new TrackingOptions();
        var all = new List<DerivedEvent>();
        foreach (var (vehicle, start, late) in runs)
        {
            var (events, _, _) = TestRoute.Drive(route, vehicle, start, late);
            var tracker = new VehicleTracker(vehicle, route.Catalog, options);
            var output = new ListOutput();
            foreach (var e in events)
            {
                tracker.Accept(e, output);
            }

            tracker.Flush(output);
            all.AddRange(output.Events);
        }

        all.Sort(DerivedEventOrder.Instance);
        return all;
    }

    [Fact]
    public void Bunching_SecondBusRightBehindFirst_AlertNamesLeader()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        route.AddTrip("T2", Start + 600);

        // T1 runs 8 min late, T2 on time: 2 min apart against a 10 min scheduled headway (20% < 25%).
        var derived = Track(route, ("0018/00001", Start, 480), ("0018/00002", Start + 600, 0));
        var network = new NetworkTracker(new TrackingOptions(), route.Catalog);
        var output = new ListOutput();
        foreach (var d in derived)
        {
            network.OnDerived(d, output);
        }

        var alert = Assert.Single(output.Events);
        Assert.Equal(AlertKind.Bunching, alert.Kind);
        Assert.Equal("0018/00002", alert.VehicleId);
        Assert.Equal("0018/00001", alert.Other);
        Assert.Equal(120, alert.Value);

        var snapshot = network.Aggregates.Snapshot();
        var figures = Assert.Single(snapshot.Routes);
        Assert.Equal(8, figures.Arrivals);
        Assert.Equal(4, figures.OnTimeArrivals); // T2's four; T1 is 8 min late
        Assert.Equal(0, figures.ActiveVehicles);
        Assert.Equal(1, snapshot.Alerts[AlertKind.Bunching]);
        Assert.Contains(snapshot.Headways, h => h.StopId == "S2" && h.LastHeadwaySeconds == 120 && h.LastScheduledHeadwaySeconds == 600);
        Assert.Equal(2, network.Stops.History("S2").Count);
    }

    [Fact]
    public void Bunching_RegularHeadway_NoAlert()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        route.AddTrip("T2", Start + 600);
        var derived = Track(route, ("0018/00001", Start, 60), ("0018/00002", Start + 600, 0));
        var network = new NetworkTracker(new TrackingOptions(), route.Catalog);
        var output = new ListOutput();
        foreach (var d in derived)
        {
            network.OnDerived(d, output);
        }

        Assert.Empty(output.Events);
    }

    [Fact]
    public void StopUpdates_CancelledAndSkipped_RaiseAlertsOnce()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        route.AddTrip("T2", Start + 600);
        var network = new NetworkTracker(new TrackingOptions(), route.Catalog);
        var output = new ListOutput();
        var t = TestRoute.Midnight.AddSeconds(Start);
        for (var i = 0; i < 2; i++)
        {
            network.OnStopUpdate(new StopUpdate(t, "T1", null, null, null, null, 2, null, null, null, StopUpdateStatus.Skipped), output);
            network.OnStopUpdate(new StopUpdate(t, "T1", null, null, null, null, 3, t.AddSeconds(300), null, 40, StopUpdateStatus.Scheduled), output);
            network.OnStopUpdate(new StopUpdate(t, "T2", null, null, null, null, -1, null, null, null, StopUpdateStatus.TripCancelled), output);
            network.OnStopUpdate(new StopUpdate(t, "NOPE", null, null, null, "S1", -1, t, null, null, StopUpdateStatus.Scheduled), output);
        }

        Assert.Equal(2, output.Events.Count);
        var skipped = Assert.Single(output.Events, d => d.Kind == AlertKind.StopSkipped);
        Assert.Equal("S1", skipped.StopId);
        Assert.Single(output.Events, d => d.Kind == AlertKind.TripCancelled && d.TripId == "T2");
        Assert.Equal(2, network.Trips.TripsMatched);
        Assert.Equal(1, network.Trips.TripsUnmatched);
        Assert.True(network.Trips.TryGet("T1", out var view));
        Assert.True(view.InSchedule);
        Assert.Equal(["S1", "S2"], view.Updates.Select(u => u.StopId));
        var upcoming = Assert.Single(network.Stops.Upcoming("S2"));
        Assert.Equal(t.AddSeconds(300), upcoming.Predicted);
    }

    [Fact]
    public void StopUpdates_ObservedStopTimes_BecomeArrivalsAndDeparturesOnceWhenTrackingTripUpdates()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start); // S1: seq 2, arrives +120, departs +140; S2: seq 3, arrives +260
        var network = new NetworkTracker(new TrackingOptions { TripUpdateStopEvents = true }, route.Catalog);
        var output = new ListOutput();
        var t0 = TestRoute.Midnight.AddSeconds(Start);
        StopUpdate At(int poll, int sequence, int? arrival, int? departure) =>
            new(t0.AddSeconds(poll), "T1", null, null, "bus-1", null, sequence,
                arrival is null ? null : t0.AddSeconds(arrival.Value), departure is null ? null : t0.AddSeconds(departure.Value), null, StopUpdateStatus.Scheduled);

        // Poll 1: S1 happened (30 s late), S2 is a prediction.
        network.OnStopUpdate(At(200, 2, 150, 170), output);
        network.OnStopUpdate(At(200, 3, 290, null), output);
        Assert.Equal(t0.AddSeconds(290), Assert.Single(network.Stops.Upcoming("S2")).Predicted);
        // Poll 2 repeats S1 (not derived again, not upcoming) and moves the prediction.
        network.OnStopUpdate(At(260, 2, 150, 170), output);
        network.OnStopUpdate(At(260, 3, 300, null), output);
        Assert.Empty(network.Stops.Upcoming("S1"));
        // Poll 3: the bus is at S2 (50 s late).
        network.OnStopUpdate(At(330, 3, 310, null), output);

        Assert.Equal(
            [(DerivedEventType.Arrival, "S1", 30), (DerivedEventType.Departure, "S1", 30), (DerivedEventType.Arrival, "S2", 50)],
            output.Events.Select(d => (d.Type, d.StopId!, d.DelaySeconds ?? int.MinValue)));
        // With the trip's mode, as its prediction rounds carry it.
        Assert.All(output.Events, d => Assert.Equal(("bus-1", "T1", DetectionSource.StopEvent, TransportMode.Bus), (d.VehicleId, d.TripId, d.Source, d.Mode)));
        Assert.Empty(network.Stops.Upcoming("S2")); // arrived: off the board
        Assert.Single(network.Stops.History("S2"));
        Assert.True(network.Trips.TryGet("T1", out var view));
        Assert.Equal((3, 50), (view.LastObservedStopSequence, view.ObservedDelaySeconds));
        Assert.Equal(3, network.Trips.StopEventsObserved);
    }

    [Fact]
    public void StopUpdates_ObservedStopTimes_NotDerivedWhenOffOrWhenAVehicleTracksTheTrip()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        route.AddTrip("T2", Start + 600);
        var t0 = TestRoute.Midnight.AddSeconds(Start);
        var off = new NetworkTracker(new TrackingOptions(), route.Catalog);
        var on = new NetworkTracker(new TrackingOptions { TripUpdateStopEvents = true }, route.Catalog);
        var output = new ListOutput();
        // T2's vehicle is tracked from its positions: its stops come from there.
        on.OnDerived(new DerivedEvent { Type = DerivedEventType.TripStarted, Time = t0.AddSeconds(590), TripId = "T2", RouteId = "10", VehicleId = "bus-2" }, output);

        off.OnStopUpdate(new StopUpdate(t0.AddSeconds(200), "T1", null, null, "bus-1", null, 2, t0.AddSeconds(150), null, null, StopUpdateStatus.Scheduled), output);
        on.OnStopUpdate(new StopUpdate(t0.AddSeconds(800), "T2", null, null, "bus-2", null, 2, t0.AddSeconds(750), null, null, StopUpdateStatus.Scheduled), output);

        Assert.Empty(output.Events);
        Assert.Equal(0, off.Trips.StopEventsObserved + on.Trips.StopEventsObserved);
    }

    [Fact]
    public void StopUpdates_TrackedFromStopEvents_PredictedAtEveryPollFromTheLastObservedStop()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start); // S1 seq 2 (+120/+140), S2 seq 3 (+260/+280), S3 seq 4 (+400)
        var network = new NetworkTracker(new TrackingOptions { TripUpdateStopEvents = true }, route.Catalog, new DelayCarriedForwardPredictor());
        var t0 = TestRoute.Midnight.AddSeconds(Start);
        List<DerivedEvent> Poll(int poll, int sequence, int? arrival, int? departure)
        {
            var output = new ListOutput();
            network.OnStopUpdate(new StopUpdate(t0.AddSeconds(poll), "T1", null, null, "bus-1", null, sequence,
                arrival is null ? null : t0.AddSeconds(arrival.Value), departure is null ? null : t0.AddSeconds(departure.Value), null, StopUpdateStatus.Scheduled), output);
            network.OnStopUpdatesDone(output);
            return output.Events;
        }

        static IEnumerable<(string?, int)> Predicted(List<DerivedEvent> events, DateTime t0) =>
            events.Where(e => e.Type == DerivedEventType.Prediction).Select(e => (e.StopId, (int)(e.Predicted!.Value - t0).TotalSeconds));

        // Before anything was observed: nothing to predict from (the feed's own times go to the stop board).
        Assert.Empty(Poll(100, 2, 150, null));
        // S1 left 30 s late: S2 and S3 predicted 30 s late, then the round's marker.
        var first = Poll(200, 2, 150, 170);
        Assert.Equal([("S2", 290), ("S3", 430)], Predicted(first, t0));
        var round = first[^1];
        Assert.Equal((DerivedEventType.PredictionRound, "bus-1", "T1", 2.0), (round.Type, round.VehicleId, round.TripId, round.Value));
        Assert.All(first.Where(e => e.Type == DerivedEventType.Prediction), e => Assert.Equal(t0.AddSeconds(200), e.Time));
        // The next poll repeats S1: no new arrival, but a new round at the poll's time.
        var second = Poll(260, 2, 150, 170);
        Assert.DoesNotContain(second, e => e.Type is DerivedEventType.Arrival or DerivedEventType.Departure);
        Assert.Equal([("S2", 290), ("S3", 430)], Predicted(second, t0));
        Assert.Equal(t0.AddSeconds(260), second[^1].Time);
        // At S2, 50 s late: only S3 is left.
        var third = Poll(330, 3, 310, null);
        Assert.Equal([("S3", 450)], Predicted(third, t0));
        Assert.Equal(DerivedEventType.Arrival, third[0].Type);
    }

    [Fact]
    public void StopUpdates_TrackedFromStopEvents_OneRoundPerPollAfterAllItsUpdates_DepartureOnlyIsAnArrivalToo_CancelWithdraws()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start); // S1 seq 2 (+120/+140), S2 seq 3 (+260/+280), S3 seq 4 (+400)
        var network = new NetworkTracker(new TrackingOptions { TripUpdateStopEvents = true }, route.Catalog, new DelayCarriedForwardPredictor());
        var t0 = TestRoute.Midnight.AddSeconds(Start);
        var output = new ListOutput();
        StopUpdate At(int poll, int sequence, int? arrival, int? departure, StopUpdateStatus status = StopUpdateStatus.Scheduled) =>
            new(t0.AddSeconds(poll), "T1", null, null, null, null, sequence,
                arrival is null ? null : t0.AddSeconds(arrival.Value), departure is null ? null : t0.AddSeconds(departure.Value), null, status);

        // One poll reports S1 left (no arrival given) and S2 reached: one round, after both, from S2.
        network.OnStopUpdate(At(300, 2, null, 150), output);
        network.OnStopUpdate(At(300, 3, 290, null), output);
        network.OnStopUpdatesDone(output);

        Assert.Equal(
            [(DerivedEventType.Arrival, "S1"), (DerivedEventType.Departure, "S1"), (DerivedEventType.Arrival, "S2"), (DerivedEventType.Prediction, "S3"), (DerivedEventType.PredictionRound, null)],
            output.Events.Select(d => (d.Type, d.StopId)));
        Assert.Equal(t0.AddSeconds(150), output.Events[0].Time); // the arrival nobody reported: no later than the departure
        Assert.All(output.Events, d => Assert.Equal("trip:T1", d.VehicleId)); // the feed named no vehicle
        Assert.Equal(t0.AddSeconds(430), output.Events[3].Predicted);

        // The trip is cancelled: an empty round retires its predictions.
        output.Events.Clear();
        network.OnStopUpdate(new StopUpdate(t0.AddSeconds(360), "T1", null, null, null, null, -1, null, null, null, StopUpdateStatus.TripCancelled), output);
        network.OnStopUpdatesDone(output);
        Assert.Contains(output.Events, d => d.Type == DerivedEventType.PredictionRound && d.Value == 0 && d.VehicleId == "trip:T1");
        Assert.DoesNotContain(output.Events, d => d.Type == DerivedEventType.Prediction);
    }

    [Fact]
    public void StopUpdates_APositionOnTheTrip_StopsItsStopEventsEvenBeforeTheVehicleJoinedIt()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        var network = new NetworkTracker(new TrackingOptions { TripUpdateStopEvents = true }, route.Catalog, new DelayCarriedForwardPredictor());
        var t0 = TestRoute.Midnight.AddSeconds(Start);
        var output = new ListOutput();

        network.OnVehiclePosition("T1"); // a VehiclePositions entity on T1, before any TripUpdate named it
        network.OnStopUpdate(new StopUpdate(t0.AddSeconds(200), "T1", null, null, "bus-1", null, 2, t0.AddSeconds(150), t0.AddSeconds(170), null, StopUpdateStatus.Scheduled), output);
        network.OnStopUpdatesDone(output);

        Assert.Empty(output.Events);
    }

    [Fact]
    public void StopUpdates_AFeedClockAheadOfOurs_IsNotTrustedToSayAStopHappened()
    {
        var receive = TestRoute.Midnight.AddSeconds(Start);
        var feed = new TransitRealtime.FeedMessage { Header = new TransitRealtime.FeedHeader { GtfsRealtimeVersion = "2.0" } };
        var tu = new TransitRealtime.TripUpdate
        {
            Trip = new TransitRealtime.TripDescriptor { TripId = "T1" },
            Timestamp = (ulong)(receive.AddHours(1) - DateTime.UnixEpoch).TotalSeconds, // an hour ahead of our clock
        };
        tu.StopTimeUpdate.Add(new TransitRealtime.TripUpdate.Types.StopTimeUpdate
        {
            StopSequence = 2,
            Arrival = new TransitRealtime.TripUpdate.Types.StopTimeEvent { Time = (long)(receive.AddMinutes(30) - DateTime.UnixEpoch).TotalSeconds },
        });
        feed.Entity.Add(new TransitRealtime.FeedEntity { Id = "1", TripUpdate = tu });

        var update = Assert.Single(Fleet.Tracking.Replay.GtfsRtStopUpdates.Extract(feed, receive, matcher: null));
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        var network = new NetworkTracker(new TrackingOptions { TripUpdateStopEvents = true }, route.Catalog);
        var output = new ListOutput();
        network.OnStopUpdate(update, output);

        Assert.Equal(receive + EventTimeClock.MaxAhead, update.Time);
        Assert.Empty(output.Events); // 30 min from now has not happened, whatever the feed's clock says
    }
}
