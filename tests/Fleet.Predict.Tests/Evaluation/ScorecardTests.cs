using System.Text.Json;
using System.Xml.Linq;
using Fleet.Predict.Evaluation;

namespace Fleet.Predict.Tests.Evaluation;

public sealed class ScorecardTests
{
    [Theory]
    [InlineData(0, 0)]
    [InlineData(59.9, 0)]
    [InlineData(60, 1)]
    [InlineData(299, 2)]
    [InlineData(300, 3)]
    [InlineData(899, 4)]
    [InlineData(1799, 5)]
    [InlineData(1800, -1)]
    [InlineData(-1, -1)]
    [InlineData(double.NaN, -1)]
    public void HorizonBucket_IndexOf_BucketsByMinutes(double seconds, int expected) =>
        Assert.Equal(expected, HorizonBucket.IndexOf(seconds));

    [Fact]
    public void CalItp_AtFiveMinutes_WiderBandForLateVehicles()
    {
        // t = 5 min: the band on actual − predicted is (-60·ln 6.3, 60·ln 6.5) = (-110.43, 112.31) s.
        // Vehicle 111 s later than predicted (error = predicted − actual = -111): inside.
        Assert.True(CalItp.IsAccurate(-111, 300));
        // Vehicle 111 s earlier than predicted (error = +111): outside, riders would miss it.
        Assert.False(CalItp.IsAccurate(111, 300));
        Assert.True(CalItp.IsAccurate(110, 300));
        Assert.False(CalItp.IsAccurate(-113, 300));
    }

    [Fact]
    public void Score_KnownErrors_ExactMetrics()
    {
        var card = new Scorecard();
        foreach (var e in new[] { -10.0, 20, -30, 40 })
        {
            Assert.True(card.Add("p", 400, e));
        }

        var s = card.Score("p", 3);

        Assert.Equal(4, s.N);
        Assert.Equal(25.0, s.Mae, 9);                                    // (10+20+30+40)/4
        Assert.Equal(Math.Sqrt((100 + 400 + 900 + 1600) / 4.0), s.Rmse, 9);
        Assert.Equal(37.0, s.P90, 5);                                     // sorted |e| 10,20,30,40; h = 2.7 → 30 + 0.7·10
        Assert.Equal(5.0, s.Bias, 9);
        // t = 6.67 min: band on error is (-60·ln 8.17, 60·ln 7.97) = (-126, 124.5); all four inside.
        Assert.Equal(1.0, s.CalItp, 9);
    }

    [Fact]
    public void Add_OutsideBuckets_Rejected()
    {
        var card = new Scorecard();
        Assert.False(card.Add("p", 1800, 1));
        Assert.False(card.Add("p", 10, double.NaN));
    }

    [Fact]
    public void ToJson_Shape_MatchesContract()
    {
        var card = new Scorecard();
        card.AddPredictor("schedule");
        card.Add("model", 400, 12);

        using var doc = JsonDocument.Parse(card.ToJson());

        var predictors = doc.RootElement.GetProperty("predictors");
        Assert.Equal(JsonValueKind.Null, predictors.GetProperty("schedule").GetProperty("5-10").GetProperty("mae").ValueKind);
        var bucket = predictors.GetProperty("model").GetProperty("5-10");
        Assert.Equal(12.0, bucket.GetProperty("mae").GetDouble());
        Assert.Equal(1, bucket.GetProperty("n").GetInt32());
        Assert.Equal(1.0, bucket.GetProperty("calitp").GetDouble());
        Assert.Equal(6, predictors.GetProperty("model").EnumerateObject().Count());
    }

    [Fact]
    public void SvgPlot_TwoPredictors_WellFormedWithOneLineEach()
    {
        var card = new Scorecard();
        card.Add("a & b", 30, 5);
        card.Add("a & b", 400, 50);
        card.Add("c", 400, 20);

        var doc = XDocument.Parse(SvgPlot.MaeByHorizon(card));

        XNamespace svg = "http://www.w3.org/2000/svg";
        Assert.Equal(2, doc.Descendants(svg + "polyline").Count());
        Assert.Contains(doc.Descendants(svg + "text"), t => t.Value == "a & b");
    }
}
