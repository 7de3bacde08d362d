using Fleet.Actors;
using Fleet.Actors.Persistence;
using Fleet.Tracking.Entities;
using Fleet.Tracking.Output;

namespace Fleet.Tracking.Tests;

public sealed class VehicleEntityTests
{
    private const int Start = 8 * 3600;

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
    public async Task Host_RestartMidTrip_ResumesFromJournalWithoutRepeatingEvents()
    {
        var route = new TestRoute();
        route.AddTrip("T1", Start);
        var (events, _, _) = TestRoute.Drive(route, "0018/00001", Start);
        var journal = new InMemoryJournal();
        var regionOptions = new ShardRegionOptions { ShardCount = 4, SnapshotEvery = 50 };

        var before = new LockedOutput();
        await using (var host = new TrackingHost(route.Catalog, new TrackingOptions(), before, journal, regionOptions))
        {
            foreach (var e in events.Take(170))
            {
                await host.PostAsync(e, TestContext.Current.CancellationToken);
            }

            await host.StopAsync(TestContext.Current.CancellationToken);
        }

        var after = new LockedOutput();
        await using (var host = new TrackingHost(route.Catalog, new TrackingOptions(), after, journal, regionOptions))
        {
            foreach (var e in events.Skip(170))
            {
                await host.PostAsync(e, TestContext.Current.CancellationToken);
            }

            await host.AdvanceClockAsync(events[^1].EventTime.AddSeconds(61), TestContext.Current.CancellationToken);
            await host.StopAsync(TestContext.Current.CancellationToken);
            // The network stage is rebuilt from what follows the restart (only vehicles are persisted).
            Assert.Equal(2, host.Network.Aggregates.Snapshot().Routes.Single().Arrivals);
        }

        // Before the restart: S0 and S1 (the reorder window holds the last 60 s). After it: S2 and S3, from the
        // recovered state (the trip is not started again, and nothing is repeated).
        Assert.Equal(["S0", "S1"], before.Events.Where(d => d.Type == DerivedEventType.Arrival).Select(d => d.StopId));
        Assert.Equal(["S2", "S3"], after.Events.Where(d => d.Type == DerivedEventType.Arrival).Select(d => d.StopId));
        Assert.DoesNotContain(after.Events, d => d.Type == DerivedEventType.TripStarted);
        Assert.Single(before.Events, d => d.Type == DerivedEventType.TripStarted);
    }
}
