using Fleet.Gtfs;
using Fleet.Gtfs.Realtime;
using Fleet.Testing;
using Fleet.Tracking.Network;
using Fleet.Tracking.Output;
using Fleet.Tracking.Replay;
using Fleet.Tracking.Schedule;

namespace Fleet.Tracking.Tests;

public sealed class CaltrainTests
{
    [Fact]
    public void TripUpdates_JoinCaltrainSchedule_EveryTripAndStop()
    {
        // Sources: shared/data/gtfs-rt/caltrain_2023-11-07 and gtfs-static/caltrain_2023-09-23_2024-06-01.zip
        // (interline-io/transitland-lib testdata/rt); PROVENANCE: 19/19 trip_ids, 51/51 stop_ids in the static feed.
        var rt = SharedData.RequireFile("gtfs-rt/caltrain_2023-11-07/trip-updates_1699405534.pb");
        var gtfs = SharedData.RequireFile("gtfs-static/caltrain_2023-09-23_2024-06-01.zip");
        var schedule = GtfsLoader.Load(gtfs);
        var feed = GtfsRtDecoder.DecodeFile(rt);
        var network = new NetworkTracker(new TrackingOptions(), new GtfsTripCatalog(schedule));
        var output = new ListOutput();

        var updates = GtfsRtStopUpdates.Extract(feed, GtfsRtNormalizer.FromPosix(feed.Header.Timestamp), new TripMatcher(schedule)).ToList();
        foreach (var u in updates)
        {
            network.OnStopUpdate(u, output);
        }

        // Counted from the decoded feed directly: every TripUpdate and its stop_time_updates.
        var tripUpdates = feed.Entity.Count(e => e.TripUpdate is not null);
        var stopTimeUpdates = feed.Entity.Where(e => e.TripUpdate is not null).Sum(e => e.TripUpdate.StopTimeUpdate.Count);
        Assert.Equal(19, tripUpdates);
        Assert.Equal(stopTimeUpdates, updates.Count);
        Assert.Equal(19, network.Trips.TripsMatched);
        Assert.Equal(0, network.Trips.TripsUnmatched);
        Assert.Equal(stopTimeUpdates, network.Trips.StopsMatched);
        Assert.Equal(0, network.Trips.StopsUnmatched);

        // The joined trip knows its service date (Tuesday 2023-11-07 in America/Los_Angeles) and upcoming stops carry predictions.
        var first = network.Trips.TripIds()[0];
        Assert.True(network.Trips.TryGet(first, out var view));
        Assert.Equal(new DateOnly(2023, 11, 7), view.ServiceDate);
        Assert.NotEmpty(view.Updates);
        Assert.Contains(view.Updates, u => u.StopId is not null && network.Stops.Upcoming(u.StopId).Any(a => a.TripId == first));
    }
}
