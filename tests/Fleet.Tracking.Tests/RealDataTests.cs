using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
using Fleet.Testing;
using Fleet.Tracking.Output;
using Fleet.Tracking.Replay;
using Fleet.Tracking.Schedule;

namespace Fleet.Tracking.Tests;

public sealed class RealDataTests
{
    [Fact]
    public void HslBus1029_StopEventsWithoutSchedule_GiveStopVisitsInOrder()
    {
        // Source: shared/data/hfp (HSLdevcom/transitdata-partial-apc-expander-combiner tests/testData/currentStopNull/hfp.dump).
        var path = SharedData.RequireFile("hfp/hfp-v2_2024-02-13_bus-0018-01029_route5520.txt");
        var output = new ListOutput();
        var engine = new TrackingEngine(new InMemoryTripCatalog(), new TrackingOptions(), output, partitions: 2, batchSize: 100);
        var stream = new HfpStream();
        using (var reader = RecordingReader.Open(path))
        {
            while (reader.TryRead(out var line))
            {
                if (stream.Process(line, out var e) == HfpOutcome.Event)
                {
                    engine.Post(e);
                }
            }
        }

        engine.Complete();

        // Expected, counted with: grep -E '/(arr|ars|dep|pde|pas)/' FILE, reading "tst" and "stop" of each payload:
        //   PAS+DEP 4150208 at 16:33:00.472 / .479 (journey 17:35); ARS 4170215 16:47:21.892, PDE 16:48:22.439, DEP .447
        //   (journey 18:48); ARR 4170299 16:49:38.695 (the file ends before its DEP).
        var visits = output.Events.Where(d => d.Type is DerivedEventType.Arrival or DerivedEventType.Departure)
            .Select(d => $"{(d.Type == DerivedEventType.Arrival ? "arr" : "dep")} {d.StopId} {d.Time:HH:mm:ss.fff}")
            .ToList();
        Assert.Equal(
        [
            "arr 4150208 16:33:00.472",
            "dep 4150208 16:33:00.472",
            "arr 4170215 16:47:21.892",
            "dep 4170215 16:48:22.439",
            "arr 4170299 16:49:38.695",
        ], visits);
        Assert.All(output.Events.Where(d => d.IsPublic), d => Assert.Equal("0018/01029", d.VehicleId));
    }
}
