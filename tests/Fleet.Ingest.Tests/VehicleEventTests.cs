using Fleet.Ingest.Events;

namespace Fleet.Ingest.Tests;

public sealed class VehicleEventTests
{
    [Fact]
    public void Empty_HasEveryOptionalFieldAbsent()
    {
        var e = VehicleEvent.Empty;

        Assert.False(e.HasPosition);
        Assert.True(double.IsNaN(e.Odometer));
        Assert.Null(e.DelaySeconds);
        Assert.Equal(-1, e.DirectionId);
        Assert.Equal(-1, e.StartTimeSeconds);
        Assert.Equal(-1, e.Occupancy);
        Assert.Equal(EventType.Unknown, e.Type);
    }
}
