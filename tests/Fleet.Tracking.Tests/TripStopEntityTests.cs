using Fleet.Actors;
using Fleet.Actors.Persistence;
using Fleet.Tracking.Entities;
using Fleet.Tracking.Network;
using Fleet.Tracking.Output;

namespace Fleet.Tracking.Tests;

[Trait("Category", "Integration")]
public sealed class TripStopEntityTests : IDisposable
{
    private const int Start = 8 * 3600;
    private const string Vehicle = "0018/00001";
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("fleet-trip-stop-");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Delete(recursive: true);
    }

    private sealed class LockedOutput : ITrackingOutput
    {
        private readonly Lock _gate = new();

        public List<DerivedEvent> Events { get; } = [];

        public void Publish(DerivedEvent derived)
        {
            lock (_gate)
            {
                Events.Add(derived);
            }
        }
    }

    [Fact]
    public async Task Host_RestartOnSqlite_BringsBackTripUpdatesAndStopHistory()
    {
        var route = new TestRoute();
        var plan = route.AddTrip("T1", Start);
        var (events, _, _) = TestRoute.Drive(route, Vehicle, Start);
        var t0 = events[0].EventTime;
        var options = new SqliteJournalOptions { Path = Path.Combine(_dir.FullName, "journal.db") };

        // Snapshots every 3 events: recovery goes through snapshot + later events for the busier entities.
        var regionOptions = new ShardRegionOptions { ShardCount = 4, SnapshotEvery = 3 };
        var output = new LockedOutput();
        await using (var journal = new SqliteJournal(options))
        {
            await using var host = new TrackingHost(route.Catalog, new TrackingOptions(), output, journal, regionOptions);

            // The feed names stops by stop_id only; the trip resolves their stop_sequence from the schedule. The
            // second S2 update repeats the first with a newer feed time (a feed repeats every update).
            await host.PostStopUpdateAsync(new StopUpdate(t0, "T1", null, null, null, "S2", -1, t0.AddSeconds(300), null, 40, StopUpdateStatus.Scheduled), Ct);
            await host.PostStopUpdateAsync(new StopUpdate(t0.AddSeconds(30), "T1", null, null, null, "S2", -1, t0.AddSeconds(300), null, 40, StopUpdateStatus.Scheduled), Ct);
            await host.PostStopUpdateAsync(new StopUpdate(t0, "T1", null, null, null, "S3", -1, null, null, null, StopUpdateStatus.Skipped), Ct);
            await host.PostStopUpdateAsync(new StopUpdate(t0, "T9", null, null, null, "S1", -1, t0.AddSeconds(900), null, null, StopUpdateStatus.Scheduled), Ct);
            foreach (var e in events)
            {
                await host.PostAsync(e, Ct);
            }

            await host.AdvanceClockAsync(events[^1].EventTime.AddSeconds(61), Ct);
            await host.StopAsync(Ct);
        }

        // What the vehicle derived before the restart, counted from the output: the trip's and stops' ground truth.
        var arrivals = output.Events.Where(d => d.Type == DerivedEventType.Arrival).ToList();
        Assert.Equal(["S0", "S1", "S2", "S3"], arrivals.Select(d => d.StopId));

        await using (var journal = new SqliteJournal(options))
        {
            await using var host = new TrackingHost(route.Catalog, new TrackingOptions(), new LockedOutput(), journal, regionOptions);

            var trip = await host.GetTripAsync("T1", Ct);
            Assert.NotNull(trip);
            Assert.True(trip.InSchedule);
            Assert.Equal(Vehicle, trip.VehicleId);
            Assert.Equal([("S2", plan.Stops[2].Sequence, StopUpdateStatus.Scheduled), ("S3", plan.Stops[3].Sequence, StopUpdateStatus.Skipped)],
                trip.Updates.Select(u => (u.StopId, u.StopSequence, u.Status)));
            Assert.Equal(t0, trip.Updates[0].Time); // the repeat was not stored again
            Assert.Equal(["S3"], trip.SkippedStops);
            Assert.Equal(arrivals[^1].StopSequence, trip.LastObservedStopSequence);
            Assert.Equal(arrivals[^1].DelaySeconds, trip.ObservedDelaySeconds);

            for (var i = 0; i < arrivals.Count; i++)
            {
                var stop = await host.GetStopAsync(arrivals[i].StopId!, Ct);
                Assert.NotNull(stop);
                var seen = Assert.Single(stop.History);
                Assert.Equal(("T1", Vehicle, arrivals[i].Time, arrivals[i].DelaySeconds), (seen.TripId, seen.VehicleId, seen.Time, seen.DelaySeconds));
                Assert.DoesNotContain(stop.Upcoming, u => u.TripId == "T1");
            }

            // T9 (not in the schedule) never arrived: its TripUpdate's arrival is still upcoming at S1.
            var s1 = await host.GetStopAsync("S1", Ct);
            var upcoming = Assert.Single(s1!.Upcoming);
            Assert.Equal(("T9", t0.AddSeconds(900), true), (upcoming.TripId, upcoming.Predicted, upcoming.FromTripUpdate));
            Assert.False((await host.GetTripAsync("T9", Ct))!.InSchedule);

            Assert.Null(await host.GetTripAsync("NOPE", Ct));
            Assert.Null(await host.GetStopAsync("NOPE", Ct));
            await host.StopAsync(Ct);
        }
    }

    [Fact]
    public async Task StopEntity_ArrivalsOfOneRoute_RecordHeadwayToThePreviousTrip()
    {
        var journal = new InMemoryJournal();
        await using var stops = new ShardRegion<StopMessage>(TrackingHost.StopRegionName, id => new StopEntity(id), new ShardRegionOptions { ShardCount = 2 }, journal);
        var t = TestRoute.Midnight.AddHours(8);
        DerivedEvent Arrival(string trip, DateTime at, string route = "10") =>
            new() { Type = DerivedEventType.Arrival, Time = at, TripId = trip, RouteId = route, DirectionId = 0, StopId = "S1", VehicleId = "v-" + trip };

        await stops.TellAsync("S1", new StopMessage.Arrived(Arrival("A", t)), Ct);
        await stops.TellAsync("S1", new StopMessage.Arrived(Arrival("X", t.AddSeconds(60), route: "20")), Ct);
        await stops.TellAsync("S1", new StopMessage.Arrived(Arrival("B", t.AddSeconds(300))), Ct);
        var reply = new TaskCompletionSource<StopView?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await stops.TellAsync("S1", new StopMessage.Query(reply), Ct);
        var view = await reply.Task.WaitAsync(Ct);

        Assert.Equal([("A", (int?)null), ("X", null), ("B", 300)], view!.History.Select(h => (h.TripId, h.HeadwaySeconds)));
    }
}
