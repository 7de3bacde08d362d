using Fleet.Ingest.Events;
using Fleet.Tracking.Output;
using Fleet.Tracking.Vehicles;

namespace Fleet.Tracking.Tests;

public sealed class VehicleTrackerTests
{
    private const int Start = 8 * 3600;

    private static List<DerivedEvent> Run(TestRoute route, IEnumerable<VehicleEvent> events, TrackingOptions? options = null, string vehicle = "0018/00001")
    {
        var tracker = new VehicleTracker(vehicle, route.Catalog, options ?? new TrackingOptions());
        var output = new ListOutput();
        foreach (var e in events)
        {
            tracker.Accept(e, output);
        }

        tracker.Flush(output);
        return output.Events;
    }

    [Fact]
    public void Positions_StoppingAtEveryStop_ArrivalsWithinTwoSecondsOfTruth()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        var (events, arrivals, departures) = TestRoute.Drive(route, "0018/00001", Start, lateSeconds: 30);

        var derived = Run(route, events);

        var detected = derived.Where(d => d.Type == DerivedEventType.Arrival).ToList();
        Assert.Equal(["S0", "S1", "S2", "S3"], detected.Select(d => d.StopId));
        for (var i = 0; i < 4; i++)
        {
            Assert.InRange((detected[i].Time - arrivals[i]).Duration().TotalSeconds, 0, 2);
            Assert.Equal(DetectionSource.Position, detected[i].Source);
        }

        var deps = derived.Where(d => d.Type == DerivedEventType.Departure).ToList();
        Assert.Equal(4, deps.Count);
        Assert.InRange((deps[1].Time - departures[1]).Duration().TotalSeconds, 0, 2);

        // Started 30 s late and drove to time otherwise: 30 s late at the first stop.
        Assert.Equal(30, detected[0].DelaySeconds);
        Assert.Contains(derived, d => d.Type == DerivedEventType.TripEnded && d.Other == "completed");
    }

    [Fact]
    public void StopEvents_ArsAndPde_DecideArrivalAndDeparture()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        var (events, _, _) = TestRoute.Drive(route, "0018/00001", Start);
        var t0 = TestRoute.Midnight.AddSeconds(Start);

        // Feed stop events at S1 that differ from what positions would say, to see which one wins.
        var vp = events[50];
        var arr = TestRoute.StopEvent(vp, EventType.Arr, "S1");
        arr.EventTime = t0.AddSeconds(95);
        var ars = TestRoute.StopEvent(vp, EventType.Ars, "S1");
        ars.EventTime = t0.AddSeconds(101);
        var pde = TestRoute.StopEvent(vp, EventType.Pde, "S1");
        pde.EventTime = t0.AddSeconds(117);
        var dep = TestRoute.StopEvent(vp, EventType.Dep, "S1");
        dep.EventTime = t0.AddSeconds(119);
        var all = events.Concat([arr, ars, pde, dep]).OrderBy(e => e.EventTime).ToList();

        var derived = Run(route, all);

        var s1Arrival = Assert.Single(derived, d => d.Type == DerivedEventType.Arrival && d.StopId == "S1");
        Assert.Equal(t0.AddSeconds(101), s1Arrival.Time);
        Assert.Equal(DetectionSource.StopEvent, s1Arrival.Source);
        var s1Departure = Assert.Single(derived, d => d.Type == DerivedEventType.Departure && d.StopId == "S1");
        Assert.Equal(t0.AddSeconds(117), s1Departure.Time);

        // S0 had no stop event before S1's: it is filled from positions.
        var s0 = Assert.Single(derived, d => d.Type == DerivedEventType.Arrival && d.StopId == "S0");
        Assert.Equal(DetectionSource.Position, s0.Source);
    }

    [Fact]
    public void StopEvents_ArrWithoutArs_ArrivalAtArr()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        var (events, _, _) = TestRoute.Drive(route, "0018/00001", Start);
        var t0 = TestRoute.Midnight.AddSeconds(Start);
        var arr = TestRoute.StopEvent(events[10], EventType.Arr, "S1");
        arr.EventTime = t0.AddSeconds(97);
        var dep = TestRoute.StopEvent(events[10], EventType.Dep, "S1");
        dep.EventTime = t0.AddSeconds(125);

        var derived = Run(route, events.Concat([arr, dep]).OrderBy(e => e.EventTime));

        Assert.Equal(t0.AddSeconds(97), Assert.Single(derived, d => d.Type == DerivedEventType.Arrival && d.StopId == "S1").Time);
        Assert.Equal(t0.AddSeconds(125), Assert.Single(derived, d => d.Type == DerivedEventType.Departure && d.StopId == "S1").Time);
    }

    [Fact]
    public void OffRoute_150MetresFor40Seconds_RaisesAndClears()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);

        // Between 1300 m and 1700 m (40 s at 10 m/s) the bus drives 150 m north of the line.
        var (events, _, _) = TestRoute.Drive(route, "0018/00001", Start, offNorth: a => a is > 1300 and < 1700 ? 150 : 0);

        var derived = Run(route, events);

        var alerts = derived.Where(d => d.Type == DerivedEventType.Alert && d.Kind == AlertKind.OffRoute).ToList();
        Assert.Equal(2, alerts.Count);
        Assert.False(alerts[0].Cleared);
        Assert.InRange(alerts[0].Value!.Value, 140, 160);
        Assert.True(alerts[1].Cleared);

        // Progress survived the detour: every stop still arrives.
        Assert.Equal(4, derived.Count(d => d.Type == DerivedEventType.Arrival));
    }

    [Fact]
    public void OffRoute_150MetresFor20Seconds_NoAlert()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        var (events, _, _) = TestRoute.Drive(route, "0018/00001", Start, offNorth: a => a is > 1300 and < 1500 ? 150 : 0);

        var derived = Run(route, events);

        Assert.DoesNotContain(derived, d => d.Type == DerivedEventType.Alert && d.Kind == AlertKind.OffRoute);
    }

    [Fact]
    public void Stale_NoMessageFor120SecondsOnTrip_AlertAtLastPlus120()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        var (events, _, _) = TestRoute.Drive(route, "0018/00001", Start);
        var tracker = new VehicleTracker("0018/00001", route.Catalog, new TrackingOptions());
        var output = new ListOutput();
        foreach (var e in events.Take(50))
        {
            tracker.Accept(e, output);
        }

        var last = events[49].EventTime;
        tracker.AdvanceClock(last.AddSeconds(119), output);
        Assert.DoesNotContain(output.Events, d => d.Kind == AlertKind.Stale);

        tracker.AdvanceClock(last.AddSeconds(150), output);
        var stale = Assert.Single(output.Events, d => d.Kind == AlertKind.Stale);
        Assert.Equal(last.AddSeconds(120), stale.Time);

        // The next message clears it.
        var next = events[50];
        next.EventTime = last.AddSeconds(200);
        tracker.Accept(next, output);
        tracker.Flush(output);
        Assert.Contains(output.Events, d => d.Kind == AlertKind.Stale && d.Cleared);
    }

    [Fact]
    public void SevereDelay_Over5MinutesLate_Alert()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        var (events, _, _) = TestRoute.Drive(route, "0018/00001", Start, lateSeconds: 320);

        var derived = Run(route, events);

        var alert = Assert.Single(derived, d => d.Kind == AlertKind.SevereDelay && !d.Cleared);
        Assert.True(alert.Value > 300);
    }

    [Fact]
    public void OnTime_NoSevereDelayAlert()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        var (events, _, _) = TestRoute.Drive(route, "0018/00001", Start, lateSeconds: 60);

        Assert.DoesNotContain(Run(route, events), d => d.Kind == AlertKind.SevereDelay);
    }

    [Fact]
    public void JourneyChange_NewStartTime_EndsFirstTripAndStartsSecond()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        route.AddTrip("T2", Start + 600);
        var (first, _, _) = TestRoute.Drive(route, "0018/00001", Start);
        var half = first.Take(150).ToList();
        var (second, _, _) = TestRoute.Drive(route, "0018/00001", Start + 600);

        var derived = Run(route, half.Concat(second));

        var ended = Assert.Single(derived, d => d.Type == DerivedEventType.TripEnded && d.TripId == "T1");
        Assert.Equal("journey-change", ended.Other);
        Assert.Equal(["T1", "T2"], derived.Where(d => d.Type == DerivedEventType.TripStarted).Select(d => d.TripId));
        Assert.Equal(4, derived.Count(d => d.Type == DerivedEventType.Arrival && d.TripId == "T2"));
    }

    [Fact]
    public void Deadrun_EndsTrip_AndTrailingJourneyMessagesDoNotRestartIt()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        var (events, _, _) = TestRoute.Drive(route, "0018/00001", Start);
        var dead = events[100];
        dead.Journey = JourneyType.Deadrun;
        dead.RouteId = null;
        var list = events.Take(100).Append(dead).ToList();
        var vjout = events[101];
        vjout.Type = EventType.Vjout;
        list.Add(vjout);

        var derived = Run(route, list);

        var ended = Assert.Single(derived, d => d.Type == DerivedEventType.TripEnded);
        Assert.Equal("deadrun", ended.Other);
        Assert.Single(derived, d => d.Type == DerivedEventType.TripStarted);
    }

    [Fact]
    public void Events_ShuffledWithinWindowWithDuplicates_SameResultAsInOrder()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        var (events, _, _) = TestRoute.Drive(route, "0018/00001", Start);
        var shuffled = new List<VehicleEvent>();
        var rng = new Random(7);
        for (var i = 0; i < events.Count; i += 20)
        {
            var chunk = events.Skip(i).Take(20).ToList();
            shuffled.AddRange(chunk.OrderBy(_ => rng.Next()));
            shuffled.Add(chunk[0]); // a duplicate
        }

        var inOrder = Run(route, events).Where(d => d.IsPublic).ToList();
        var fromShuffled = Run(route, shuffled).Where(d => d.IsPublic).ToList();

        Assert.Equal(inOrder, fromShuffled);
    }

    [Fact]
    public void UnknownJourney_CountedOnceAndNoEvents()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        var (events, _, _) = TestRoute.Drive(route, "0018/00001", Start + 1);
        var tracker = new VehicleTracker("0018/00001", route.Catalog, new TrackingOptions());
        var output = new ListOutput();
        foreach (var e in events)
        {
            tracker.Accept(e, output);
        }

        tracker.Flush(output);
        Assert.Empty(output.Events);
        Assert.Equal(1, tracker.UnmatchedJourneys);
    }

    [Fact]
    public void Predictor_AfterDeparture_PredictsEveryDownstreamStop()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        var (events, _, _) = TestRoute.Drive(route, "0018/00001", Start, lateSeconds: 45);
        var tracker = new VehicleTracker("0018/00001", route.Catalog, new TrackingOptions(), new DelayCarriedForwardPredictor());
        var output = new ListOutput();
        foreach (var e in events)
        {
            tracker.Accept(e, output);
        }

        tracker.Flush(output);
        var predictions = output.Events.Where(d => d.Type == DerivedEventType.Prediction).ToList();
        Assert.NotEmpty(predictions);
        var afterS1 = predictions.Where(p => p.Time == output.Events.Single(d => d.Type == DerivedEventType.Departure && d.StopId == "S1").Time).ToList();
        Assert.Equal(["S2", "S3"], afterS1.Select(p => p.StopId));
    }
}
