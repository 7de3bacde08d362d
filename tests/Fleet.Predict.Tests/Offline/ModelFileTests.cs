using Fleet.Predict.Learning;
using Fleet.Predict.Offline;

namespace Fleet.Predict.Tests.Offline;

public sealed class ModelFileTests : IDisposable
{
    private readonly LineFeed _feed = new(trips: 30);

    public void Dispose() => _feed.Dispose();

    [Fact]
    public void SaveLoad_RoundTrip_SamePredictions()
    {
        var day = SyntheticDay.Create(_feed, seed: 5);
        var options = new ArrivalTrainingOptions { Trees = new GbtOptions { MaxTrees = 20, MinSamplesLeaf = 10 } };
        var model = ArrivalPipeline.Train(_feed.Schedule, [day], options, cancellationToken: TestContext.Current.CancellationToken).Model;
        using var stream = new MemoryStream();
        model.Save(stream);

        var loaded = ArrivalModel.Load(new MemoryStream(stream.ToArray()));

        var (a, _) = ArrivalPipeline.Evaluate(_feed.Schedule, [day], model.Bind(_feed.Schedule), cancellationToken: TestContext.Current.CancellationToken);
        var (b, _) = ArrivalPipeline.Evaluate(_feed.Schedule, [day], loaded.Bind(_feed.Schedule), cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(a.ToJson(), b.ToJson());
        Assert.Equal(model.Description, loaded.Description);
    }

    [Fact]
    public void Load_TreeModelFile_ClearError()
    {
        // A bare tree file is a different format: the arrival model loader must say so, not crash.
        using var stream = new MemoryStream();
        var data = new Dataset(["x"], 16);
        for (var i = 0; i < 50; i++)
        {
            data.Add([i], i);
        }

        new GbtTrainer(new GbtOptions { MaxTrees = 2, MinSamplesLeaf = 5 }).Fit(data, cancellationToken: TestContext.Current.CancellationToken).Model.Save(stream);

        var e = Assert.Throws<InvalidDataException>(() => ArrivalModel.Load(new MemoryStream(stream.ToArray()), "m.bin"));
        Assert.Contains("not a Fleet arrival model", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadTruthCsv_BadRows_CountedByReason()
    {
        var text = "trip_id,stop_id,stop_sequence,vehicle,arrival,departure\n" +
                   "T00,S0,1,0001/1,2026-03-02T04:00:00.000Z,2026-03-02T04:00:00.000Z\n" +  // 06:00 Helsinki (UTC+2)
                   "T00,S1,2,0001/1,2026-03-02T04:02:00.000Z,2026-03-02T04:02:10.000Z\n" +
                   "NOPE,S1,2,0001/1,2026-03-02T04:02:00.000Z,2026-03-02T04:02:10.000Z\n" +
                   "T00,S2,2,0001/1,2026-03-02T04:02:00.000Z,2026-03-02T04:02:10.000Z\n" +
                   "T00,S2,3,0001/1,yesterday,2026-03-02T04:02:10.000Z\n" +
                   "T00,S2,99,0001/1,2026-03-02T04:02:00.000Z,2026-03-02T04:02:10.000Z\n" +
                   "too,few\n";

        var actuals = ActualStopTimes.ReadTruthCsv(new StringReader(text), _feed.Schedule);

        Assert.Equal(2, actuals.Accepted);
        Assert.Equal(1, actuals.Rejections["unknown_trip"]);
        Assert.Equal(1, actuals.Rejections["stop_mismatch"]);
        Assert.Equal(1, actuals.Rejections["bad_time"]);
        Assert.Equal(1, actuals.Rejections["unknown_stop_sequence"]);
        Assert.Equal(1, actuals.Rejections["bad_row"]);
        var trip = Assert.Single(actuals.Trips.Values);
        Assert.Equal(LineFeed.Day, trip.Key.ServiceDate);
        Assert.Equal(_feed.Unix(LineFeed.FirstStart + 120), trip.Arrival[1], 6);
    }

    [Fact]
    public void ReadTruthCsv_WrongHeader_Throws()
    {
        var e = Assert.Throws<InvalidDataException>(() => ActualStopTimes.ReadTruthCsv(new StringReader("a,b,c\n"), _feed.Schedule, "x.csv"));
        Assert.Contains("x.csv", e.Message, StringComparison.Ordinal);
    }
}
