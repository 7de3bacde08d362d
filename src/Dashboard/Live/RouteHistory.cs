namespace Fleet.Dashboard.Live;

/// <summary>One 5-minute bucket of a route's day: how late its arrivals were and how far apart.</summary>
/// <param name="Time">Start of the bucket, UTC (shifted like the live state's times).</param>
/// <param name="Arrivals">Arrivals of the route's vehicles at stops in the bucket.</param>
/// <param name="MeanDelaySeconds">Their mean delay, positive when late; null when none had one.</param>
/// <param name="MeanHeadwaySeconds">Mean time since the route's previous arrival at the same stop; null when none.</param>
/// <param name="ScheduledHeadwaySeconds">Mean scheduled headway at those arrivals; null when unknown.</param>
public sealed record RoutePoint(DateTime Time, int Arrivals, double? MeanDelaySeconds, double? MeanHeadwaySeconds, double? ScheduledHeadwaySeconds);

/// <summary>
/// The route charts' data: every tracked arrival adds its delay and its headway (the time since the route's previous
/// arrival at that stop) to the route's 5-minute bucket. The last 24 hours of event time are kept.
/// </summary>
/// <remarks>Thread-safe (one lock; an arrival costs a dictionary update or two). Bounded: buckets older than a day
/// and stops not served for a day are dropped.</remarks>
public sealed class RouteHistory
{
    /// <summary>Width of a bucket.</summary>
    public static readonly TimeSpan Bucket = TimeSpan.FromMinutes(5);

    private static readonly TimeSpan Keep = TimeSpan.FromHours(24);
    private readonly Lock _gate = new();
    private readonly Dictionary<string, SortedDictionary<long, Sums>> _routes = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Route, string Stop), long> _lastArrival = [];
    private long _newest;

    /// <summary>Adds an arrival of a route's vehicle at a stop.</summary>
    public void OnArrival(string routeId, string stopId, DateTime time, int? delaySeconds, int? scheduledHeadwaySeconds)
    {
        ArgumentNullException.ThrowIfNull(routeId);
        ArgumentNullException.ThrowIfNull(stopId);
        var bucket = time.Ticks - (time.Ticks % Bucket.Ticks);
        lock (_gate)
        {
            if (!_routes.TryGetValue(routeId, out var buckets))
            {
                _routes[routeId] = buckets = [];
            }

            if (!buckets.TryGetValue(bucket, out var sums))
            {
                buckets[bucket] = sums = new Sums();
            }

            sums.Arrivals++;
            if (delaySeconds is { } d)
            {
                sums.DelaySum += d;
                sums.Delays++;
            }

            if (scheduledHeadwaySeconds is { } s and > 0)
            {
                sums.ScheduledSum += s;
                sums.Scheduled++;
            }

            var key = (routeId, stopId);
            if (_lastArrival.TryGetValue(key, out var last) && time.Ticks > last && time.Ticks - last < TimeSpan.TicksPerHour * 2)
            {
                sums.HeadwaySum += (time.Ticks - last) / (double)TimeSpan.TicksPerSecond;
                sums.Headways++;
            }

            if (!_lastArrival.TryGetValue(key, out var previous) || time.Ticks > previous)
            {
                _lastArrival[key] = time.Ticks;
            }

            if (time.Ticks > _newest)
            {
                _newest = time.Ticks;
                Trim();
            }
        }
    }

    /// <summary>A route's buckets, oldest first.</summary>
    public IReadOnlyList<RoutePoint> Of(string routeId)
    {
        ArgumentNullException.ThrowIfNull(routeId);
        lock (_gate)
        {
            return _routes.TryGetValue(routeId, out var buckets)
                ? [.. buckets.Select(b => new RoutePoint(
                    new DateTime(b.Key, DateTimeKind.Utc), b.Value.Arrivals,
                    b.Value.Delays > 0 ? b.Value.DelaySum / (double)b.Value.Delays : null,
                    b.Value.Headways > 0 ? b.Value.HeadwaySum / b.Value.Headways : null,
                    b.Value.Scheduled > 0 ? b.Value.ScheduledSum / (double)b.Value.Scheduled : null))]
                : [];
        }
    }

    /// <summary>Forgets everything (a replay sought or looped: event time started over).</summary>
    public void Clear()
    {
        lock (_gate)
        {
            _routes.Clear();
            _lastArrival.Clear();
            _newest = 0;
        }
    }

    // Under _gate, when time moved on: buckets and stops older than Keep go.
    private void Trim()
    {
        var cutoff = _newest - Keep.Ticks;
        foreach (var buckets in _routes.Values)
        {
            while (buckets.Count > 0 && buckets.First().Key < cutoff)
            {
                buckets.Remove(buckets.First().Key);
            }
        }

        if (_lastArrival.Count > 4096)
        {
            foreach (var (key, _) in _lastArrival.Where(kv => kv.Value < cutoff).ToList())
            {
                _lastArrival.Remove(key);
            }
        }
    }

    private sealed class Sums
    {
        public int Arrivals;
        public long DelaySum;
        public int Delays;
        public double HeadwaySum;
        public int Headways;
        public long ScheduledSum;
        public int Scheduled;
    }
}
