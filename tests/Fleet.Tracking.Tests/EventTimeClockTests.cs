using Fleet.Testing;

namespace Fleet.Tracking.Tests;

public sealed class EventTimeClockTests
{
    private static readonly DateTimeOffset Wall = new(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Observe_OldRecording_ClockIsTheNewestEventTimeNotTheWallClock()
    {
        var time = new FakeTimeProvider(Wall);
        var clock = new EventTimeClock(time, TimeSpan.Zero);
        var t0 = new DateTime(2026, 3, 2, 5, 15, 0, DateTimeKind.Utc);

        Assert.Null(clock.Now);
        Assert.Equal(t0.AddSeconds(10), clock.Observe(t0.AddSeconds(10)));
        // An older event does not move the clock back.
        Assert.Equal(t0.AddSeconds(10), clock.Observe(t0.AddSeconds(3)));
        Assert.Equal(t0.AddSeconds(10), clock.Now);
    }

    [Fact]
    public void Observe_EventInTheFuture_CappedAtTheWallClockPlusMaxAhead()
    {
        var time = new FakeTimeProvider(Wall);
        var clock = new EventTimeClock(time, TimeSpan.Zero);

        Assert.Equal(Wall.UtcDateTime + EventTimeClock.MaxAhead, clock.Observe(Wall.UtcDateTime.AddHours(1)));
    }

    [Fact]
    public void Now_SourcesSilent_MovesOnWithTheWallClockOnlyAfterTheLatenessWindow()
    {
        var time = new FakeTimeProvider(Wall);
        var clock = new EventTimeClock(time, TimeSpan.FromSeconds(60));
        var t0 = new DateTime(2026, 3, 2, 5, 15, 0, DateTimeKind.Utc);
        clock.Observe(t0);

        time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(t0, clock.Now);
        time.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(t0.AddSeconds(30), clock.Now);

        // A new event: the clock is event time again.
        Assert.Equal(t0.AddSeconds(45), clock.Observe(t0.AddSeconds(45)));
    }
}
