using System.Globalization;
using System.Text;
using BenchmarkDotNet.Attributes;
using Fleet.Gtfs;
using Fleet.Predict;
using Fleet.Predict.Learning;
using Fleet.Predict.Online;

namespace Fleet.Bench;

/// <summary>
/// Online prediction cost: one vehicle update predicting its next 30 stops (the plan of the downstream stops,
/// the features and the trees), as the tracking vehicle entity calls it. Target: under 50 µs.
/// </summary>
/// <remarks>
/// The schedule is a 40-stop line written as a GTFS folder at setup. The model is as large as training allows:
/// 150 trees of up to 31 leaves, depth 6 (fleet train's limits) trained without early stopping (the sample city's model has fewer), on a historical
/// profile and a live store holding a recent vehicle on every segment.
/// </remarks>
[MemoryDiagnoser]
public class PredictBenchmarks
{
    private const int Stops = 40;
    private string _folder = string.Empty;
    private PredictionContext _context = null!;
    private PredictorSet _predictors = null!;
    private GbtModel _gbt = null!;
    private readonly ArrivalPrediction[] _output = new ArrivalPrediction[30];
    private readonly float[] _row = new float[ArrivalFeatures.Count];
    private double _now;

    [GlobalSetup]
    public void Setup()
    {
        var inv = CultureInfo.InvariantCulture;
        _folder = Path.Combine(Path.GetTempPath(), "fleet-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
        var stops = new StringBuilder("stop_id,stop_name,stop_lat,stop_lon\n");
        var times = new StringBuilder("trip_id,arrival_time,departure_time,stop_id,stop_sequence\n");
        for (var s = 0; s < Stops; s++)
        {
            stops.Append(inv, $"S{s},Stop {s},{60 + (s * 0.004):0.000000},25.0\n");
            var t = new ServiceTime((7 * 3600) + (s * 90));
            times.Append(inv, $"T1,{t},{t},S{s},{s + 1}\n");
        }

        File.WriteAllText(Path.Combine(_folder, "agency.txt"), "agency_id,agency_name,agency_url,agency_timezone\nA,A,http://a,Europe/Helsinki\n");
        File.WriteAllText(Path.Combine(_folder, "stops.txt"), stops.ToString());
        File.WriteAllText(Path.Combine(_folder, "routes.txt"), "route_id,agency_id,route_short_name,route_long_name,route_type\nR,A,1,One,3\n");
        File.WriteAllText(Path.Combine(_folder, "trips.txt"), "route_id,service_id,trip_id,direction_id\nR,WK,T1,0\n");
        File.WriteAllText(Path.Combine(_folder, "stop_times.txt"), times.ToString());
        File.WriteAllText(Path.Combine(_folder, "calendar.txt"),
            "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nWK,1,1,1,1,1,1,1,20260101,20261231\n");
        var schedule = GtfsLoader.Load(_folder);

        var profile = new HistoricalProfile();
        for (var s = 1; s < Stops; s++)
        {
            for (var v = 0; v < 5; v++)
            {
                profile.AddTravel("S" + (s - 1), "S" + s, 7 * 3600, 80 + v);
                profile.AddDwell("S" + s, 7 * 3600, 10 + v);
            }
        }

        var bound = ArrivalModel.BindProfile(profile, schedule);
        var live = new LiveStatistics();
        var day = new DateOnly(2026, 3, 2);
        var start = PredictionContext.ToUnix(schedule.ToUtc(day, new ServiceTime(7 * 3600)));
        schedule.TryGetTrip("T1", out var trip);
        for (var s = 1; s < Stops; s++)
        {
            schedule.TryGetStop("S" + (s - 1), out var from);
            schedule.TryGetStop("S" + s, out var to);
            live.ObserveTravel(from, to, start - 300 + s, 85);
            live.ObserveDwell(to, start - 300 + s, 12);
            live.ObserveArrival(to, 0, start - 300 + s);
        }

        // The largest model fleet train builds: 150 full trees (no early stopping without a validation set).
        var data = new Dataset(ArrivalFeatures.Names, 20_000);
        var rng = new Pcg32(1);
        var row = new float[ArrivalFeatures.Count];
        for (var r = 0; r < 20_000; r++)
        {
            for (var c = 0; c < row.Length; c++)
            {
                row[c] = (float)(rng.NextDouble() * 1000);
            }

            data.Add(row, (float)((row[0] * 0.1) + (row[3] * 0.05) + (30 * rng.NextGaussian())), r);
        }

        _gbt = new GbtTrainer(new GbtOptions { MaxTrees = 150, MaxLeaves = 31, MaxDepth = 6, MinSamplesLeaf = 20 }).Fit(data).Model;
        _predictors = new PredictorSet(bound, null, _gbt);
        _context = new PredictionContext(schedule, live);
        _context.SetTrip(trip, day);
        _context.LastStop = 2;
        _context.AtStop = false;
        _context.LastStopDepartureUnix = start + 190;
        _context.DelaySeconds = 20;
        _now = start + 200;
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_folder, recursive: true);

    /// <summary>The model: plan, features and 150 trees for 30 stops (a new vehicle state every call).</summary>
    [Benchmark]
    public int Model30Stops()
    {
        _now += 1; // a new state, so the downstream plan is rebuilt as on a real update
        _context.NowUnix = _now;
        return _predictors.Model!.Predict(_context, _output);
    }

    /// <summary>The Kalman baseline for 30 stops (plan only).</summary>
    [Benchmark]
    public int Kalman30Stops()
    {
        _now += 1;
        _context.NowUnix = _now;
        return _predictors.All[3].Predict(_context, _output);
    }

    /// <summary>One row through 150 trees.</summary>
    [Benchmark]
    public double Trees150OneRow() => _gbt.Predict(_row);
}
