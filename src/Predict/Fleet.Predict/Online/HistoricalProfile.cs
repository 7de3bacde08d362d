using System.Text;

namespace Fleet.Predict.Online;

/// <summary>A mean, a variance and a count.</summary>
/// <param name="Mean">Mean seconds.</param>
/// <param name="Variance">Sample variance (seconds²); NaN with fewer than two observations.</param>
/// <param name="Count">Number of observations.</param>
public readonly record struct TimeStat(double Mean, double Variance, int Count)
{
    /// <summary>No observations.</summary>
    public static TimeStat None => new(double.NaN, double.NaN, 0);

    /// <summary>True when there is at least one observation.</summary>
    public bool HasValue => Count > 0;
}

/// <summary>
/// Historical running times per segment (stop to next stop: departure → arrival) and dwell times per stop, by
/// time-of-day bucket: the "history" that the historical and Kalman baselines and the model's features start from.
/// </summary>
/// <remarks>
/// <para>Segments and stops are keyed by GTFS stop_id so a profile outlives one loaded <c>Schedule</c>; lookups
/// go through <see cref="Bind"/>, which maps ids to the schedule's stop indexes once. A lookup falls back to the
/// whole-day statistic of the segment when its bucket is empty.</para>
/// <para>Building (<see cref="AddTravel"/>, <see cref="AddDwell"/>) is not thread-safe; a bound profile is
/// immutable and thread-safe.</para>
/// </remarks>
public sealed class HistoricalProfile
{
    /// <summary>Width of a time-of-day bucket, seconds.</summary>
    public const int BucketSeconds = 1800;

    /// <summary>Buckets per day (service times can exceed 24 h; they wrap).</summary>
    public const int Buckets = 86400 / BucketSeconds;

    private readonly Dictionary<(string From, string To), Welford[]> _travel = [];
    private readonly Dictionary<string, Welford[]> _dwell = new(StringComparer.Ordinal);

    private struct Welford
    {
        public int Count;
        public double Mean;
        public double M2;

        public void Add(double x)
        {
            Count++;
            var d = x - Mean;
            Mean += d / Count;
            M2 += d * (x - Mean);
        }

        public void Merge(in Welford other)
        {
            if (other.Count == 0)
            {
                return;
            }

            var n = Count + other.Count;
            var d = other.Mean - Mean;
            Mean += d * other.Count / n;
            M2 += other.M2 + (d * d * Count * other.Count / n);
            Count = n;
        }

        public readonly TimeStat Stat => Count == 0 ? TimeStat.None : new TimeStat(Mean, Count > 1 ? M2 / (Count - 1) : double.NaN, Count);
    }

    /// <summary>Number of segments with observations.</summary>
    public int SegmentCount => _travel.Count;

    /// <summary>Number of stops with dwell observations.</summary>
    public int StopCount => _dwell.Count;

    /// <summary>The bucket of a time of day in seconds (wraps past 24 h).</summary>
    public static int BucketOf(double secondsOfDay)
    {
        var b = (int)Math.Floor(secondsOfDay / BucketSeconds) % Buckets;
        return b < 0 ? b + Buckets : b;
    }

    /// <summary>Adds a running time from <paramref name="fromStopId"/> to the next stop <paramref name="toStopId"/>.</summary>
    public void AddTravel(string fromStopId, string toStopId, double secondsOfDay, double seconds)
    {
        if (!double.IsFinite(seconds) || seconds < 0)
        {
            return;
        }

        if (!_travel.TryGetValue((fromStopId, toStopId), out var row))
        {
            _travel[(fromStopId, toStopId)] = row = new Welford[Buckets + 1];
        }

        row[BucketOf(secondsOfDay)].Add(seconds);
        row[Buckets].Add(seconds); // the whole-day fallback
    }

    /// <summary>Adds a dwell time at a stop.</summary>
    public void AddDwell(string stopId, double secondsOfDay, double seconds)
    {
        if (!double.IsFinite(seconds) || seconds < 0)
        {
            return;
        }

        if (!_dwell.TryGetValue(stopId, out var row))
        {
            _dwell[stopId] = row = new Welford[Buckets + 1];
        }

        row[BucketOf(secondsOfDay)].Add(seconds);
        row[Buckets].Add(seconds);
    }

    /// <summary>The running-time statistic of a segment at a time of day (bucket, else whole day, else none).</summary>
    public TimeStat Travel(string fromStopId, string toStopId, double secondsOfDay) =>
        _travel.TryGetValue((fromStopId, toStopId), out var row) ? Pick(row, secondsOfDay) : TimeStat.None;

    /// <summary>The dwell statistic of a stop at a time of day.</summary>
    public TimeStat Dwell(string stopId, double secondsOfDay) =>
        _dwell.TryGetValue(stopId, out var row) ? Pick(row, secondsOfDay) : TimeStat.None;

    private static TimeStat Pick(Welford[] row, double secondsOfDay)
    {
        var b = row[BucketOf(secondsOfDay)];
        return b.Count >= 2 ? b.Stat : row[Buckets].Stat;
    }

    /// <summary>Adds every observation of <paramref name="other"/> to this profile.</summary>
    public void Merge(HistoricalProfile other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (var (key, src) in other._travel)
        {
            if (!_travel.TryGetValue(key, out var row))
            {
                _travel[key] = row = new Welford[Buckets + 1];
            }

            for (var i = 0; i < row.Length; i++)
            {
                row[i].Merge(src[i]);
            }
        }

        foreach (var (key, src) in other._dwell)
        {
            if (!_dwell.TryGetValue(key, out var row))
            {
                _dwell[key] = row = new Welford[Buckets + 1];
            }

            for (var i = 0; i < row.Length; i++)
            {
                row[i].Merge(src[i]);
            }
        }
    }

    /// <summary>Resolves stop ids against a schedule's stop list for index-based lookups on the hot path.</summary>
    public BoundProfile Bind(Func<string, int> stopIndexOf)
    {
        ArgumentNullException.ThrowIfNull(stopIndexOf);
        var travel = new Dictionary<long, TimeStat[]>(_travel.Count);
        foreach (var ((from, to), row) in _travel)
        {
            int f = stopIndexOf(from), t = stopIndexOf(to);
            if (f >= 0 && t >= 0)
            {
                travel[SegmentKey(f, t)] = Stats(row);
            }
        }

        var dwell = new Dictionary<int, TimeStat[]>(_dwell.Count);
        foreach (var (stop, row) in _dwell)
        {
            var s = stopIndexOf(stop);
            if (s >= 0)
            {
                dwell[s] = Stats(row);
            }
        }

        return new BoundProfile(travel, dwell);
    }

    private static TimeStat[] Stats(Welford[] row)
    {
        var result = new TimeStat[row.Length];
        for (var i = 0; i < row.Length; i++)
        {
            result[i] = row[i].Stat;
        }

        return result;
    }

    /// <summary>The key of a segment between two stop indexes.</summary>
    public static long SegmentKey(int fromStop, int toStop) => ((long)fromStop << 32) | (uint)toStop;

    /// <summary>Writes the profile (used inside the arrival model file).</summary>
    public void Write(BinaryWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.Write(BucketSeconds);
        w.Write(_travel.Count);
        foreach (var ((from, to), row) in _travel)
        {
            w.Write(from);
            w.Write(to);
            WriteRow(w, row);
        }

        w.Write(_dwell.Count);
        foreach (var (stop, row) in _dwell)
        {
            w.Write(stop);
            WriteRow(w, row);
        }
    }

    /// <summary>Reads a profile written by <see cref="Write"/>.</summary>
    /// <exception cref="InvalidDataException">The data does not describe a profile.</exception>
    public static HistoricalProfile Read(BinaryReader r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var bucket = r.ReadInt32();
        if (bucket != BucketSeconds)
        {
            throw new InvalidDataException($"historical profile with {bucket}-second buckets; this build uses {BucketSeconds}");
        }

        var profile = new HistoricalProfile();
        var travel = r.ReadInt32();
        CheckCount(travel);
        for (var i = 0; i < travel; i++)
        {
            var from = r.ReadString();
            var to = r.ReadString();
            profile._travel[(from, to)] = ReadRow(r);
        }

        var dwell = r.ReadInt32();
        CheckCount(dwell);
        for (var i = 0; i < dwell; i++)
        {
            profile._dwell[r.ReadString()] = ReadRow(r);
        }

        return profile;
    }

    private static void CheckCount(int n)
    {
        if (n is < 0 or > 50_000_000)
        {
            throw new InvalidDataException($"historical profile count {n} out of range");
        }
    }

    private static void WriteRow(BinaryWriter w, Welford[] row)
    {
        var used = 0;
        for (var i = 0; i < row.Length; i++)
        {
            if (row[i].Count > 0)
            {
                used++;
            }
        }

        w.Write(used);
        for (var i = 0; i < row.Length; i++)
        {
            if (row[i].Count > 0)
            {
                w.Write((byte)i);
                w.Write(row[i].Count);
                w.Write(row[i].Mean);
                w.Write(row[i].M2);
            }
        }
    }

    private static Welford[] ReadRow(BinaryReader r)
    {
        var row = new Welford[Buckets + 1];
        var used = r.ReadInt32();
        if (used < 0 || used > row.Length)
        {
            throw new InvalidDataException($"historical profile row with {used} buckets");
        }

        for (var i = 0; i < used; i++)
        {
            var b = r.ReadByte();
            if (b >= row.Length)
            {
                throw new InvalidDataException($"historical profile bucket {b} out of range");
            }

            row[b] = new Welford { Count = r.ReadInt32(), Mean = r.ReadDouble(), M2 = r.ReadDouble() };
        }

        return row;
    }

    /// <summary>A debugging summary.</summary>
    public override string ToString() => new StringBuilder().Append(_travel.Count).Append(" segments, ").Append(_dwell.Count).Append(" stops").ToString();
}

/// <summary>A <see cref="HistoricalProfile"/> resolved to a schedule's stop indexes.</summary>
/// <remarks>Immutable; thread-safe.</remarks>
public sealed class BoundProfile
{
    private readonly Dictionary<long, TimeStat[]> _travel;
    private readonly Dictionary<int, TimeStat[]> _dwell;

    internal BoundProfile(Dictionary<long, TimeStat[]> travel, Dictionary<int, TimeStat[]> dwell)
    {
        _travel = travel;
        _dwell = dwell;
    }

    /// <summary>An empty profile (every lookup misses).</summary>
    public static BoundProfile Empty { get; } = new([], []);

    /// <summary>Running time of the segment between two stop indexes at a time of day.</summary>
    public TimeStat Travel(int fromStop, int toStop, double secondsOfDay) =>
        _travel.TryGetValue(HistoricalProfile.SegmentKey(fromStop, toStop), out var row) ? Pick(row, secondsOfDay) : TimeStat.None;

    /// <summary>Dwell at a stop index at a time of day.</summary>
    public TimeStat Dwell(int stop, double secondsOfDay) =>
        _dwell.TryGetValue(stop, out var row) ? Pick(row, secondsOfDay) : TimeStat.None;

    private static TimeStat Pick(TimeStat[] row, double secondsOfDay)
    {
        var b = row[HistoricalProfile.BucketOf(secondsOfDay)];
        return b.Count >= 2 ? b : row[HistoricalProfile.Buckets];
    }
}
