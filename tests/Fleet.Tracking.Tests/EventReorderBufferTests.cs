using Fleet.Ingest.Events;
using Fleet.Tracking.Vehicles;

namespace Fleet.Tracking.Tests;

public sealed class EventReorderBufferTests
{
    private static VehicleEvent At(int second, double lat = 60)
    {
        var e = VehicleEvent.Empty;
        e.VehicleId = "1/1";
        e.Type = EventType.Vp;
        e.EventTime = TestRoute.Midnight.AddSeconds(second);
        e.Latitude = lat;
        e.Longitude = 24;
        return e;
    }

    [Fact]
    public void Release_OutOfOrderWithinWindow_ComesOutInOrder()
    {
        var buffer = new EventReorderBuffer(TimeSpan.FromSeconds(60));
        foreach (var s in new[] { 10, 5, 30, 20, 25, 100 })
        {
            Assert.True(buffer.Add(At(s)));
        }

        var released = new List<VehicleEvent>();
        buffer.Release(DateTime.MinValue, released);

        // The clock is 100 s; everything at or before 40 s is released, in order.
        Assert.Equal([5, 10, 20, 25, 30], released.Select(e => (int)(e.EventTime - TestRoute.Midnight).TotalSeconds));
        Assert.Equal(1, buffer.Count);
    }

    [Fact]
    public void Add_AfterSlotReleased_CountsLateAndDrops()
    {
        var buffer = new EventReorderBuffer(TimeSpan.FromSeconds(60));
        buffer.Add(At(0));
        buffer.Add(At(100));
        var released = new List<VehicleEvent>();
        buffer.Release(DateTime.MinValue, released);

        Assert.False(buffer.Add(At(-5)));
        Assert.Equal(1, buffer.Late);
        Assert.True(buffer.Add(At(50)));
        Assert.Equal(1, buffer.Late);
    }

    [Fact]
    public void Add_ExactDuplicate_DroppedAndCountedAsDuplicate()
    {
        var buffer = new EventReorderBuffer(TimeSpan.FromSeconds(60));
        Assert.True(buffer.Add(At(1)));
        Assert.False(buffer.Add(At(1)));
        Assert.True(buffer.Add(At(1, lat: 61))); // same time, different message
        Assert.Equal(1, buffer.Duplicates);
        Assert.Equal(0, buffer.Late);
    }

    [Fact]
    public void Release_StreamClockAhead_ReleasesSilentVehicle()
    {
        var buffer = new EventReorderBuffer(TimeSpan.FromSeconds(60));
        buffer.Add(At(0));
        var released = new List<VehicleEvent>();
        buffer.Release(DateTime.MinValue, released);
        Assert.Empty(released);

        buffer.Release(TestRoute.Midnight.AddSeconds(61), released);
        Assert.Single(released);
    }
}
