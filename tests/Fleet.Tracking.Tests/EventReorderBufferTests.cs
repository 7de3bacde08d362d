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

    [Fact]
    public void Add_NoLateness_ReleasedAtOnce()
    {
        var buffer = new EventReorderBuffer(TimeSpan.Zero, TimeSpan.FromSeconds(2));
        var released = new List<VehicleEvent>();
        Assert.True(buffer.Add(At(10)));
        buffer.Release(DateTime.MinValue, released);
        Assert.Equal([10], released.Select(e => (int)(e.EventTime - TestRoute.Midnight).TotalSeconds));
        Assert.Equal(0, buffer.Count);
    }

    [Fact]
    public void Add_LateWithinTolerance_ReleasedInTheNewestPlaceAndCountedCorrected()
    {
        var buffer = new EventReorderBuffer(TimeSpan.Zero, TimeSpan.FromSeconds(2));
        var released = new List<VehicleEvent>();
        buffer.Add(At(10));
        buffer.Release(DateTime.MinValue, released);
        released.Clear();

        var stop = At(9, lat: 60.5);
        stop.Type = EventType.Arr;
        Assert.True(buffer.Add(stop));
        buffer.Release(DateTime.MinValue, released);

        var only = Assert.Single(released);
        Assert.Equal(EventType.Arr, only.Type);
        Assert.Equal(TestRoute.Midnight.AddSeconds(10), only.EventTime); // moved up to the newest released time
        Assert.Equal(1, buffer.Corrected);
        Assert.Equal(0, buffer.Late);
    }

    [Fact]
    public void Add_LateBeyondTolerance_CountedLateAndDropped()
    {
        var buffer = new EventReorderBuffer(TimeSpan.Zero, TimeSpan.FromSeconds(2));
        var released = new List<VehicleEvent>();
        buffer.Add(At(10));
        buffer.Release(DateTime.MinValue, released);

        Assert.False(buffer.Add(At(7)));
        Assert.Equal(1, buffer.Late);
        Assert.Equal(0, buffer.Corrected);
    }

    [Fact]
    public void Add_RedeliveredAfterNewerOnes_CountedDuplicateNotTrackedTwice()
    {
        var buffer = new EventReorderBuffer(TimeSpan.Zero, TimeSpan.FromSeconds(2));
        var released = new List<VehicleEvent>();
        buffer.Add(At(10));
        buffer.Add(At(11));
        buffer.Release(DateTime.MinValue, released);

        Assert.False(buffer.Add(At(10))); // a QoS 1 redelivery of the first, after the second
        Assert.Equal(1, buffer.Duplicates);
        Assert.Equal(0, buffer.Corrected);
    }

    [Fact]
    public void Add_CorrectedEventRedelivered_CountedDuplicate()
    {
        var buffer = new EventReorderBuffer(TimeSpan.Zero, TimeSpan.FromSeconds(2));
        var released = new List<VehicleEvent>();
        buffer.Add(At(10));
        buffer.Release(DateTime.MinValue, released);
        Assert.True(buffer.Add(At(9, lat: 60.5)));
        buffer.Release(DateTime.MinValue, released);

        Assert.False(buffer.Add(At(9, lat: 60.5)));
        Assert.Equal(1, buffer.Corrected);
        Assert.Equal(1, buffer.Duplicates);
    }
}
