using System.Globalization;
using System.Text;
using Fleet.Gtfs;
using Fleet.Predict;
using Fleet.Predict.Online;
using Fleet.Tracking.Schedule;
using Fleet.Tracking.Vehicles;

namespace Fleet.Tracking.Tests;

/// <summary>
/// Predictions for the next trip of a vehicle's block: a five-stop line run out (trip A, 07:00-07:08) and back
/// (trip B, 07:20-07:28) by block K1, written as a GTFS folder. The adapter runs the Kalman baseline (no trained
/// model needed: the block logic is the same for every predictor).
/// </summary>
public sealed class BlockPredictionTests : IDisposable
{
    private static readonly DateOnly s_day = new(2026, 3, 2); // a Monday
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "fleet-block-" + Guid.NewGuid().ToString("N"));

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Predict_BlockWithTwoTrips_PredictsEveryStopOfTheSecondTripNeverBeforeItsDeparture()
    {
        var schedule = Load(withBlocks: true);
        var (a, b) = Plans(schedule);
        Assert.Same(b, a.NextInBlock);
        Assert.Null(b.NextInBlock); // the block's last trip

        // On time, two stops done: the next trip leaves on schedule (the layover absorbs the small delay).
        var predictions = Predict(schedule, a, delaySeconds: 30);

        var next = predictions.Where(p => p.Trip is not null).ToList();
        Assert.All(next, p => Assert.Same(b, p.Trip));
        Assert.Equal([0, 1, 2, 3, 4], next.Select(p => p.StopIndex));
        Assert.All(next, p => Assert.True(p.Arrival >= b.Start && p.Low >= b.Start && p.Low <= p.Arrival && p.High >= p.Arrival,
            $"stop {p.StopIndex} of {b.TripId}: {p.Low:O} <= {p.Arrival:O} <= {p.High:O}, scheduled departure {b.Start:O}"));
        Assert.Equal(b.Start, next[0].Arrival);
        Assert.Equal(3, predictions.Count(p => p.Trip is null)); // the rest of trip A
    }

    [Fact]
    public void Predict_VehicleLaterThanTheLayover_NextTripLeavesMinimumLayoverAfterTheEnd()
    {
        var schedule = Load(withBlocks: true);
        var (a, b) = Plans(schedule);

        // 20 minutes late: trip A ends after 07:20, so B leaves the minimum layover after A's predicted end.
        var predictions = Predict(schedule, a, delaySeconds: 1200);

        var end = predictions.Single(p => p.Trip is null && p.StopIndex == a.Stops.Count - 1);
        var first = predictions.Single(p => p.Trip is not null && p.StopIndex == 0);
        Assert.True(end.Arrival > b.Start, $"A's predicted end {end.Arrival:O} should be after B's departure {b.Start:O}");
        Assert.Equal(BlockContinuation.DefaultMinimumLayoverSeconds, (first.Arrival - end.Arrival).TotalSeconds, 3);
        Assert.All(predictions.Where(p => p.Trip is not null), p => Assert.True(p.Arrival >= first.Arrival));
    }

    [Fact]
    public void Predict_BlockUnknown_NoNextTripPredictions()
    {
        var schedule = Load(withBlocks: false);
        var (a, _) = Plans(schedule);

        var predictions = Predict(schedule, a, delaySeconds: 30);

        Assert.Null(schedule.GetBlockId(0));
        Assert.Null(a.NextInBlock);
        Assert.Equal(3, predictions.Count);
        Assert.All(predictions, p => Assert.Null(p.Trip));
    }

    [Fact]
    public void TryGetNextTripOfBlock_ServiceNotRunning_False()
    {
        var schedule = Load(withBlocks: true);
        Assert.True(schedule.TryGetTrip("A", out var a));
        Assert.Equal("K1", schedule.GetBlockId(a));

        Assert.True(schedule.TryGetNextTripOfBlock(a, s_day, out var b));
        Assert.Equal("B", schedule.Trips[b].Id);
        Assert.False(schedule.TryGetNextTripOfBlock(b, s_day, out _));
        Assert.False(schedule.TryGetNextTripOfBlock(a, s_day.AddDays(5), out _)); // Saturday: B's weekday service is off
    }

    [Fact]
    public void Observe_WithRetrainer_LabelsTheCapturedRowsWithTheObservedArrivals()
    {
        // Continuous learning's intake: a prediction round keeps the model's rows of the stops ahead, and each observed
        // arrival at one of them becomes one labelled row for the retrainer.
        var schedule = Load(withBlocks: false);
        var (a, _) = Plans(schedule);
        var data = new Fleet.Predict.Learning.Dataset(ArrivalFeatures.Names, 200);
        var rng = new Fleet.Predict.Learning.Pcg32(3);
        var row = new float[ArrivalFeatures.Count];
        for (var i = 0; i < 200; i++)
        {
            for (var c = 0; c < row.Length; c++)
            {
                row[c] = (float)rng.NextDouble();
            }

            data.Add(row, row[0], i);
        }

        var gbt = new Fleet.Predict.Learning.GbtTrainer(new Fleet.Predict.Learning.GbtOptions { MaxTrees = 3, MinSamplesLeaf = 5 }).Fit(data, cancellationToken: TestContext.Current.CancellationToken).Model;
        var set = new PredictorSet(ArrivalModel.BindProfile(new HistoricalProfile(), schedule), null, gbt);
        var retrainer = new Fleet.Predict.Online.ModelRetrainer((Fleet.Predict.Predictors.ModelPredictor)set.Model!,
            new Fleet.Predict.Online.RetrainingOptions { Every = TimeSpan.Zero }, null, job => job());
        var predictor = new ModelArrivalPredictor(schedule, set, retrainer: retrainer);

        var predictions = Predict(schedule, a, delaySeconds: 30, predictor);
        Assert.Equal(3, predictions.Count); // stops 2, 3 and 4 of A
        Assert.Equal(0, retrainer.AddedRows);
        for (var k = 2; k < a.Stops.Count; k++)
        {
            predictor.Observe(new Fleet.Tracking.Output.DerivedEvent
            {
                Type = Fleet.Tracking.Output.DerivedEventType.Arrival,
                Time = a.Stops[k].Arrival.AddSeconds(45),
                VehicleId = "v1",
                TripId = "A",
                ServiceDate = s_day,
                StopId = a.Stops[k].StopId,
                StopSequence = a.Stops[k].Sequence,
            });
            Assert.Equal(k - 1, retrainer.AddedRows);
        }

        Assert.Equal(3, retrainer.WindowRows);
    }

    private static List<StopPrediction> Predict(Fleet.Gtfs.Schedule schedule, TripPlan a, int delaySeconds, ModelArrivalPredictor? predictor = null)
    {
        predictor ??= new ModelArrivalPredictor(schedule, new PredictorSet(ArrivalModel.BindProfile(new HistoricalProfile(), schedule)));
        var arrivals = new long[a.Stops.Count];
        var departures = new long[a.Stops.Count];
        for (var k = 0; k < 2; k++)
        {
            arrivals[k] = a.Stops[k].Arrival.AddSeconds(delaySeconds).Ticks;
            departures[k] = a.Stops[k].Departure.AddSeconds(delaySeconds).Ticks;
        }

        var now = a.Stops[1].Departure.AddSeconds(delaySeconds + 30);
        var progress = new VehicleProgress("v1", a, now, a.Stops[1].DistanceMetres + 200, 2, delaySeconds, 8)
        {
            Arrivals = arrivals,
            Departures = departures,
            HasPosition = true,
        };
        var into = new List<StopPrediction>();
        predictor.Predict(progress, into);
        return into;
    }

    private static (TripPlan A, TripPlan B) Plans(Fleet.Gtfs.Schedule schedule)
    {
        var catalog = new GtfsTripCatalog(schedule);
        Assert.True(catalog.TryGet("A", s_day, default, out var a));
        Assert.True(catalog.TryGet("B", s_day, default, out var b));
        return (a, b);
    }

    private Fleet.Gtfs.Schedule Load(bool withBlocks)
    {
        var inv = CultureInfo.InvariantCulture;
        Directory.CreateDirectory(_folder);
        var stops = new StringBuilder("stop_id,stop_name,stop_lat,stop_lon\n");
        var times = new StringBuilder("trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled\n");
        for (var s = 0; s < 5; s++)
        {
            stops.Append(inv, $"S{s},Stop {s},{60 + (s * 0.009):0.000000},25.0\n");
            var outbound = new ServiceTime((7 * 3600) + (s * 120));
            var inbound = new ServiceTime((7 * 3600) + (20 * 60) + (s * 120));
            times.Append(inv, $"A,{outbound},{outbound},S{s},{s + 1},{s * 1000}\n");
            times.Append(inv, $"B,{inbound},{inbound},S{4 - s},{s + 1},{s * 1000}\n");
        }

        File.WriteAllText(Path.Combine(_folder, "agency.txt"), "agency_id,agency_name,agency_url,agency_timezone\nX,X,http://x,Europe/Helsinki\n");
        File.WriteAllText(Path.Combine(_folder, "stops.txt"), stops.ToString());
        File.WriteAllText(Path.Combine(_folder, "routes.txt"), "route_id,agency_id,route_short_name,route_long_name,route_type\nR,X,1,One,3\n");
        File.WriteAllText(Path.Combine(_folder, "trips.txt"), withBlocks
            ? "route_id,service_id,trip_id,direction_id,block_id\nR,WK,A,0,K1\nR,WK,B,1,K1\n"
            : "route_id,service_id,trip_id,direction_id\nR,WK,A,0\nR,WK,B,1\n");
        File.WriteAllText(Path.Combine(_folder, "stop_times.txt"), times.ToString());
        File.WriteAllText(Path.Combine(_folder, "calendar.txt"),
            "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nWK,1,1,1,1,1,0,0,20260101,20261231\n");
        return GtfsLoader.Load(_folder);
    }
}
