using Fleet.Predict.Offline;
using Fleet.Predict.Online;
using Fleet.Predict.Predictors;

namespace Fleet.Predict.Tests.Predictors;

public sealed class BaselinePredictorTests : IDisposable
{
    private readonly LineFeed _feed = new();

    public void Dispose() => _feed.Dispose();

    /// <summary>A context for trip T03, 30 s after leaving stop 1 on time, 8 s late, at 250 m + 60 m along.</summary>
    private PredictionContext Context(LiveStatistics live)
    {
        var ctx = new PredictionContext(_feed.Schedule, live);
        ctx.SetTrip(_feed.TripIndex(3), LineFeed.Day);
        var departed = _feed.Unix(LineFeed.FirstStart + (3 * LineFeed.Headway) + LineFeed.SegmentSeconds);
        ctx.LastStop = 1;
        ctx.AtStop = false;
        ctx.LastStopArrivalUnix = departed;
        ctx.LastStopDepartureUnix = departed;
        ctx.NowUnix = departed + 30;
        ctx.DistanceAlongMetres = 500 + 125; // a quarter of segment 1 → 2 done
        ctx.DelaySeconds = 8;
        return ctx;
    }

    private HistoricalProfile Profile(double segmentSeconds, double dwellSeconds)
    {
        // Ten vehicles at 06:3x, all alike except ±5 s (so the variance is known: 25·10/9).
        var profile = new HistoricalProfile();
        for (var v = 0; v < 10; v++)
        {
            var jitter = v % 2 == 0 ? 5 : -5;
            for (var s = 1; s < LineFeed.Stops; s++)
            {
                profile.AddTravel("S" + (s - 1), "S" + s, (6.5 * 3600) + 60, segmentSeconds + jitter);
                profile.AddDwell("S" + s, (6.5 * 3600) + 60, dwellSeconds);
            }
        }

        return profile;
    }

    [Fact]
    public void Schedule_PredictsTimetable_ForEveryDownstreamStop()
    {
        var ctx = Context(new LiveStatistics());
        var output = new ArrivalPrediction[10];

        var n = new SchedulePredictor(BoundProfile.Empty).Predict(ctx, output);

        Assert.Equal(LineFeed.Stops - 2, n); // stops 2..5
        for (var i = 0; i < n; i++)
        {
            Assert.Equal(2 + i, output[i].StopTimeIndex);
            Assert.Equal(_feed.Unix(LineFeed.FirstStart + (3 * LineFeed.Headway) + ((2 + i) * LineFeed.SegmentSeconds)), output[i].ArrivalUnix, 6);
            Assert.True(output[i].P10Unix <= output[i].ArrivalUnix && output[i].ArrivalUnix <= output[i].P90Unix);
        }
    }

    [Fact]
    public void Delay_AddsCurrentDelay()
    {
        var ctx = Context(new LiveStatistics());
        var schedule = new ArrivalPrediction[4];
        var delay = new ArrivalPrediction[4];

        new SchedulePredictor(BoundProfile.Empty).Predict(ctx, schedule);
        new DelayPredictor(BoundProfile.Empty).Predict(ctx, delay);

        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(schedule[i].ArrivalUnix + 8, delay[i].ArrivalUnix, 6);
        }
    }

    [Fact]
    public void Historical_SumsRemainingSegmentAndDwells()
    {
        var profile = OfflineReplayProfile(100, 20);
        var ctx = Context(new LiveStatistics());
        var output = new ArrivalPrediction[4];

        new HistoricalPredictor(profile).Predict(ctx, output);

        // Three quarters of segment 1→2 (by distance) remain: 75 s; each further stop adds a 20 s dwell and 100 s.
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(ctx.NowUnix + 75 + (i * 120), output[i].ArrivalUnix, 0.01); // the loader maps distances to metres along the stop line (≈ 500 m)
        }
    }

    [Fact]
    public void Kalman_WeighsLastVehicleAgainstHistory()
    {
        var profile = OfflineReplayProfile(100, 0);
        var live = new LiveStatistics();
        var ctx = Context(live);
        // Two vehicles ahead on segment 1→2: 130 s then 160 s, so the vehicle-to-vehicle variance is 30² = 900.
        live.ObserveTravel(_feed.StopIndex(1), _feed.StopIndex(2), ctx.NowUnix - 300, 130);
        live.ObserveTravel(_feed.StopIndex(1), _feed.StopIndex(2), ctx.NowUnix - 60, 160);
        var output = new ArrivalPrediction[1];

        new KalmanPredictor(profile).Predict(ctx, output);

        // Historical variance of ±5 s over ten vehicles: 25·10/9. K = hVar / (hVar + 900); estimate = 100 + K·60.
        var hVar = 25.0 * 10 / 9;
        var estimate = 100 + (hVar / (hVar + 900) * 60);
        Assert.Equal(ctx.NowUnix + (0.75 * estimate), output[0].ArrivalUnix, 0.01);
    }

    [Fact]
    public void Predict_AtLastStop_ReturnsNothing()
    {
        var ctx = Context(new LiveStatistics());
        ctx.LastStop = LineFeed.Stops - 1;
        ctx.AtStop = true;

        Assert.Equal(0, new SchedulePredictor(BoundProfile.Empty).Predict(ctx, new ArrivalPrediction[5]));
    }

    [Fact]
    public void Predict_BeforeFirstDeparture_NeverBeforeTimetable()
    {
        var ctx = Context(new LiveStatistics());
        var start = _feed.Unix(LineFeed.FirstStart + (3 * LineFeed.Headway));
        ctx.LastStop = 0;
        ctx.AtStop = true;
        ctx.LastStopArrivalUnix = double.NaN;
        ctx.LastStopDepartureUnix = double.NaN;
        ctx.DistanceAlongMetres = double.NaN;
        ctx.NowUnix = start - 300; // five minutes before the trip starts
        var output = new ArrivalPrediction[1];

        new HistoricalPredictor(OfflineReplayProfile(60, 0)).Predict(ctx, output);

        // Waits 300 s at the terminal, then 60 s of running time.
        Assert.Equal(start + 60, output[0].ArrivalUnix, 6);
    }

    private BoundProfile OfflineReplayProfile(double segment, double dwell) =>
        ArrivalModel.BindProfile(Profile(segment, dwell), _feed.Schedule);
}
