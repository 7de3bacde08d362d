using Xunit;

namespace Fleet.Gtfs.Tests.Static;

public sealed class ServiceTimeTests
{
    [Theory]
    [InlineData("05:00:00", 5 * 3600)]
    [InlineData("5:00:00", 5 * 3600)]
    [InlineData(" 25:10:30 ", (25 * 3600) + 600 + 30)]
    [InlineData("100:00:01", (100 * 3600) + 1)]
    public void TryParse_ValidTimes_GivesSeconds(string text, int seconds)
    {
        Assert.True(ServiceTime.TryParse(text, out var t));
        Assert.Equal(seconds, t.TotalSeconds);
    }

    [Theory]
    [InlineData("")]
    [InlineData("5:0:00")]
    [InlineData("05:60:00")]
    [InlineData("05:00:61")]
    [InlineData("0a:00:00")]
    [InlineData("05:00")]
    public void TryParse_Malformed_Fails(string text) => Assert.False(ServiceTime.TryParse(text, out _));

    [Fact]
    public void ToString_PastMidnight_KeepsHoursAbove24() =>
        Assert.Equal("25:10:05", ServiceTime.FromParts(25, 10, 5).ToString());
}
