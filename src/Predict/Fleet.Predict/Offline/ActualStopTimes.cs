using System.Globalization;
using Fleet.Gtfs;

namespace Fleet.Predict.Offline;

/// <summary>A trip on a service date.</summary>
/// <param name="TripIndex">Index into the schedule's trips.</param>
/// <param name="ServiceDate">The service date.</param>
public readonly record struct TripKey(int TripIndex, DateOnly ServiceDate);

/// <summary>The actual arrival and departure of one trip at each of its stops (Unix seconds; NaN when unknown).</summary>
public sealed class TripActuals
{
    /// <summary>Creates an empty table for a trip with <paramref name="stops"/> stops.</summary>
    public TripActuals(TripKey key, int stops, int offsetSeconds = 0)
    {
        Key = key;
        OffsetSeconds = offsetSeconds;
        Arrival = new double[stops];
        Departure = new double[stops];
        Array.Fill(Arrival, double.NaN);
        Array.Fill(Departure, double.NaN);
    }

    /// <summary>The trip.</summary>
    public TripKey Key { get; }

    /// <summary>Seconds added to the stop times (frequency-based trips).</summary>
    public int OffsetSeconds { get; }

    /// <summary>The vehicle that ran it, when known.</summary>
    public string? Vehicle { get; set; }

    /// <summary>Actual arrival per stop-time index.</summary>
    public double[] Arrival { get; }

    /// <summary>Actual departure per stop-time index.</summary>
    public double[] Departure { get; }

    /// <summary>
    /// Per stop-time index, when the stop's first event became known (the feed poll that reported it), or null
    /// when events are known the moment they happen (truth files, HFP stop events). A replay uses no event before
    /// it was known.
    /// </summary>
    public double[]? KnownAt { get; set; }

    /// <summary>When stop <paramref name="k"/>'s events were known: <see cref="KnownAt"/>, or <paramref name="happened"/>.</summary>
    public double Known(int k, double happened) => KnownAt is { } known && !double.IsNaN(known[k]) ? Math.Max(known[k], happened) : happened;
}

/// <summary>
/// Actual stop times of many trips: the ground truth predictions are scored against, and the observations the
/// historical profile and the online statistics are built from. Read from <c>truth.csv</c> or detected from HFP stop
/// events (<see cref="OfflineReplay"/>).
/// </summary>
/// <remarks>Rejected input rows are counted by reason in <see cref="Rejections"/>. Not thread-safe.</remarks>
public sealed class ActualStopTimes
{
    private readonly Dictionary<TripKey, TripActuals> _trips = [];
    private readonly Dictionary<string, long> _rejections = new(StringComparer.Ordinal);

    /// <summary>The trips, by key.</summary>
    public IReadOnlyDictionary<TripKey, TripActuals> Trips => _trips;

    /// <summary>Rejected rows by reason.</summary>
    public IReadOnlyDictionary<string, long> Rejections => _rejections;

    /// <summary>Rows (or events) accepted.</summary>
    public long Accepted { get; private set; }

    /// <summary>The table of a trip, created on first use.</summary>
    public TripActuals GetOrAdd(Schedule schedule, TripKey key, int offsetSeconds = 0)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        if (!_trips.TryGetValue(key, out var trip))
        {
            _trips[key] = trip = new TripActuals(key, schedule.Trips[key.TripIndex].StopTimeCount, offsetSeconds);
        }

        return trip;
    }

    internal void Reject(string reason) => _rejections[reason] = _rejections.GetValueOrDefault(reason) + 1;

    internal void Accept() => Accepted++;

    /// <summary>
    /// Fills the tables the way truth.csv has them: a first stop's arrival is its departure, and a stop seen only
    /// arriving departs then (dwell 0). For stop events detected or observed, not for a truth file.
    /// </summary>
    public void FillAsTruthCsv()
    {
        foreach (var trip in _trips.Values)
        {
            var n = trip.Arrival.Length;
            if (n == 0)
            {
                continue;
            }

            if (!double.IsNaN(trip.Departure[0]))
            {
                trip.Arrival[0] = trip.Departure[0];
            }

            for (var k = 1; k < n; k++)
            {
                if (double.IsNaN(trip.Departure[k]) && !double.IsNaN(trip.Arrival[k]))
                {
                    trip.Departure[k] = trip.Arrival[k];
                }
            }
        }
    }

    /// <summary>
    /// Reads <c>truth.csv</c> (<c>trip_id,stop_id,stop_sequence,vehicle,arrival,departure</c>, ISO-8601 UTC times).
    /// The service date of a row is the local date of its arrival, moved one day back when that puts the scheduled
    /// time nearer (trips after midnight).
    /// </summary>
    /// <exception cref="InvalidDataException">The header is not the truth header.</exception>
    public static ActualStopTimes ReadTruthCsv(string path, Schedule schedule)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(schedule);
        using var reader = new StreamReader(path);
        return ReadTruthCsv(reader, schedule, path);
    }

    /// <summary>Reads truth rows from a reader; <paramref name="source"/> names it in errors.</summary>
    public static ActualStopTimes ReadTruthCsv(TextReader reader, Schedule schedule, string source = "truth.csv")
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(schedule);
        var result = new ActualStopTimes();
        var header = reader.ReadLine()?.Trim().TrimStart('\uFEFF');
        if (header != "trip_id,stop_id,stop_sequence,vehicle,arrival,departure")
        {
            throw new InvalidDataException($"{source}: expected the header 'trip_id,stop_id,stop_sequence,vehicle,arrival,departure', found '{header}'");
        }

        var dateOfTrip = new Dictionary<int, DateOnly>();
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            if (line.Length == 0)
            {
                continue;
            }

            var f = line.Split(',');
            if (f.Length != 6)
            {
                result.Reject("bad_row");
                continue;
            }

            if (!schedule.TryGetTrip(f[0], out var tripIndex))
            {
                result.Reject("unknown_trip");
                continue;
            }

            if (!int.TryParse(f[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out var sequence) ||
                schedule.FindStopSequence(tripIndex, sequence) is var k && k < 0)
            {
                result.Reject("unknown_stop_sequence");
                continue;
            }

            var stopTime = schedule.GetStopTimes(tripIndex)[k];
            if (schedule.Stops[stopTime.StopIndex].Id != f[1])
            {
                result.Reject("stop_mismatch");
                continue;
            }

            if (!TryParseUtc(f[4], out var arrival) || !TryParseUtc(f[5], out var departure))
            {
                result.Reject("bad_time");
                continue;
            }

            if (!dateOfTrip.TryGetValue(tripIndex, out var date))
            {
                date = schedule.LocalDate(arrival);
                var here = Math.Abs((schedule.ToUtc(date, stopTime.Arrival) - arrival).TotalHours);
                var before = Math.Abs((schedule.ToUtc(date.AddDays(-1), stopTime.Arrival) - arrival).TotalHours);
                if (before < here)
                {
                    date = date.AddDays(-1);
                }

                dateOfTrip[tripIndex] = date;
            }

            var trip = result.GetOrAdd(schedule, new TripKey(tripIndex, date));
            trip.Vehicle ??= f[3];
            trip.Arrival[k] = PredictionContext.ToUnix(arrival);
            trip.Departure[k] = PredictionContext.ToUnix(departure);
            result.Accept();
        }

        return result;
    }

    private static bool TryParseUtc(string text, out DateTime utc) =>
        DateTime.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out utc);
}
