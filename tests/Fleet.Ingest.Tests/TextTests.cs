using System.Text;
using Fleet.Ingest.Text;

namespace Fleet.Ingest.Tests;

public sealed class TextTests
{
    [Theory]
    [InlineData("2023-10-29T13:24:10.211Z", 2023, 10, 29, 13, 24, 10, 2_110_000)]
    [InlineData("2018-10-09T04:32:52Z", 2018, 10, 9, 4, 32, 52, 0)]
    [InlineData("2018-10-09T04:32:52.549043+0000", 2018, 10, 9, 4, 32, 52, 5_490_430)]
    [InlineData("2018-10-09T07:32:52.5+03:00", 2018, 10, 9, 4, 32, 52, 5_000_000)]
    [InlineData("2025-03-01 08:03:37.255000+00:00", 2025, 3, 1, 8, 3, 37, 2_550_000)]
    [InlineData("2025-03-01T08:03:37.123456789Z", 2025, 3, 1, 8, 3, 37, 1_234_567)]
    [InlineData("2025-03-01T08:03:37", 2025, 3, 1, 8, 3, 37, 0)]
    public void TryParseUtc_AcceptedShapes_GiveUtc(string text, int y, int mo, int d, int h, int mi, int s, long fractionTicks)
    {
        Assert.True(Iso8601.TryParseUtc(Encoding.ASCII.GetBytes(text), out var value));
        Assert.Equal(new DateTime(y, mo, d, h, mi, s, DateTimeKind.Utc).AddTicks(fractionTicks), value);
        Assert.Equal(DateTimeKind.Utc, value.Kind);
    }

    [Theory]
    [InlineData("")]
    [InlineData("2023-10-29")]
    [InlineData("2023-02-30T00:00:00Z")]
    [InlineData("2023-10-29T24:00:00Z")]
    [InlineData("2023-10-29T13:24:10.Z")]
    [InlineData("2023-10-29T13:24:10ZZ")]
    [InlineData("2023-10-29T13:24:10+3")]
    [InlineData("yesterday at noon!!")]
    public void TryParseUtc_OtherText_Fails(string text) => Assert.False(Iso8601.TryParseUtc(Encoding.ASCII.GetBytes(text), out _));

    [Fact]
    public void FormatUtc_ThenParse_RoundTripsMicroseconds()
    {
        var t = new DateTime(2024, 2, 13, 16, 33, 0, DateTimeKind.Utc).AddTicks(52_710);
        Span<byte> buffer = stackalloc byte[Iso8601.FormattedLength];
        Iso8601.FormatUtc(t, buffer);
        Assert.Equal("2024-02-13T16:33:00.005271Z", Encoding.ASCII.GetString(buffer));
        Assert.True(Iso8601.TryParseUtc(buffer, out var back));
        Assert.Equal(t, back);
    }

    [Theory]
    [InlineData("17:35", 63300)]
    [InlineData("7:05", 25500)]
    [InlineData("25:10:05", 90605)]
    public void TryParseTimeOfDay_Valid_GivesSeconds(string text, int seconds)
    {
        Assert.True(Iso8601.TryParseTimeOfDay(Encoding.ASCII.GetBytes(text), out var s));
        Assert.Equal(seconds, s);
    }

    [Fact]
    public void Intern_SameBytes_SameInstance_AndCapacityBoundsStorage()
    {
        var interner = new Utf8Interner(capacity: 100);
        var a = interner.Intern("0018/01029"u8);
        var b = interner.Intern(Encoding.UTF8.GetBytes("0018/01029"));
        Assert.Same(a, b);
        Assert.Equal("Itä-Pakila", interner.Intern(Encoding.UTF8.GetBytes("Itä-Pakila")));

        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal(i.ToString(System.Globalization.CultureInfo.InvariantCulture), interner.Intern(Encoding.ASCII.GetBytes(i.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        }

        Assert.Equal(100, interner.Count);
    }
}
