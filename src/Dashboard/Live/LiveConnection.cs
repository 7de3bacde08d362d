using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Live;

/// <summary>One connected client's subscriptions and pending (coalesced) keys.</summary>
/// <remarks>Guarded by <see cref="Gate"/>; only <see cref="LiveEvents"/> touches it.</remarks>
[DebuggerDisplay("{Id} subs={Subscriptions.Count} busy={Busy} urgentBusy={UrgentBusy}")]
internal sealed class LiveConnection(string id, Action? abort = null)
{
    public readonly Lock Gate = new();

    public string Id { get; } = id;

    public Action? Abort { get; } = abort;

    public HashSet<Subscription> Subscriptions { get; } = [];

    /// <summary>A vehicle batch is being written.</summary>
    public bool Busy { get; set; }

    public long BusySince { get; set; }

    public bool MissCounted { get; set; }

    public long LastSent { get; set; }

    /// <summary>A prediction/alert push is being written.</summary>
    public bool UrgentBusy { get; set; }

    public long UrgentBusySince { get; set; }

    public bool UrgentMissCounted { get; set; }

    /// <summary>Pushes this client missed (coalesced into a later one) because it was still writing.</summary>
    public long Missed { get; set; }

    /// <summary>Disconnected as too slow (once).</summary>
    public bool Aborted { get; set; }

    public LiveClientStats Stats(TimeProvider time, long now)
    {
        var oldest = TimeSpan.Zero;
        if (Busy)
        {
            oldest = time.GetElapsedTime(BusySince, now);
        }

        if (UrgentBusy && time.GetElapsedTime(UrgentBusySince, now) is var u && u > oldest)
        {
            oldest = u;
        }

        return new LiveClientStats(PendingCount, (Busy ? 1 : 0) + (UrgentBusy ? 1 : 0), oldest, Missed);
    }

    private readonly HashSet<string> _vehicleIds = new(StringComparer.Ordinal);
    private readonly HashSet<string> _routeIds = new(StringComparer.Ordinal);
    private readonly HashSet<string> _stopIds = new(StringComparer.Ordinal);
    private readonly List<BoundingBox> _boxes = [];

    private readonly HashSet<string> _pendingVehicles = new(StringComparer.Ordinal);
    private readonly HashSet<string> _pendingRemovals = new(StringComparer.Ordinal);
    private readonly HashSet<PredictionKey> _pendingPredictions = [];
    private readonly HashSet<string> _pendingAlerts = new(StringComparer.Ordinal);

    public bool HasPendingVehicles => _pendingVehicles.Count + _pendingRemovals.Count > 0;

    public bool HasPendingUrgent => _pendingPredictions.Count + _pendingAlerts.Count > 0;

    private int PendingCount => _pendingVehicles.Count + _pendingRemovals.Count + _pendingPredictions.Count + _pendingAlerts.Count;

    public void Add(Subscription s)
    {
        Subscriptions.Add(s);
        Rebuild();
    }

    public bool Remove(Subscription s)
    {
        var removed = Subscriptions.Remove(s);
        Rebuild();
        return removed;
    }

    private void Rebuild()
    {
        _vehicleIds.Clear();
        _routeIds.Clear();
        _stopIds.Clear();
        _boxes.Clear();
        foreach (var s in Subscriptions)
        {
            switch (s.Kind)
            {
                case SubscriptionKind.Vehicle: _vehicleIds.Add(s.Id); break;
                case SubscriptionKind.Route: _routeIds.Add(s.Id); break;
                case SubscriptionKind.Stop: _stopIds.Add(s.Id); break;
                case SubscriptionKind.Bbox: _boxes.Add(s.Box); break;
                default: break;
            }
        }
    }

    public bool Matches(VehicleState v)
    {
        if (_vehicleIds.Contains(v.Id) || (v.RouteId is not null && _routeIds.Contains(v.RouteId)))
        {
            return true;
        }

        foreach (var box in _boxes)
        {
            if (box.Contains(v.Latitude, v.Longitude))
            {
                return true;
            }
        }

        return false;
    }

    public bool Matches(ArrivalPrediction p) => MatchesPrediction(p.StopId, p.RouteId, p.VehicleId);

    public bool MatchesPrediction(string stopId, string? routeId, string? vehicleId) =>
        _stopIds.Contains(stopId)
        || (routeId is not null && _routeIds.Contains(routeId))
        || (vehicleId is not null && _vehicleIds.Contains(vehicleId));

    public bool Matches(LiveAlert a) =>
        (a.StopId is not null && _stopIds.Contains(a.StopId))
        || (a.RouteId is not null && _routeIds.Contains(a.RouteId))
        || (a.VehicleId is not null && _vehicleIds.Contains(a.VehicleId));

    public void QueueVehicle(string id, int max, LiveMetrics metrics)
    {
        _pendingRemovals.Remove(id);
        if (!_pendingVehicles.Contains(id) && PendingCount >= max)
        {
            metrics.CountRejected(RejectReason.ClientPendingLimit);
            return;
        }

        _pendingVehicles.Add(id);
    }

    public void QueueRemoval(string id, int max, LiveMetrics metrics)
    {
        _pendingVehicles.Remove(id);
        if (!_pendingRemovals.Contains(id) && PendingCount >= max)
        {
            metrics.CountRejected(RejectReason.ClientPendingLimit);
            return;
        }

        _pendingRemovals.Add(id);
    }

    public void QueuePrediction(PredictionKey key, int max, LiveMetrics metrics)
    {
        if (!_pendingPredictions.Contains(key) && PendingCount >= max)
        {
            metrics.CountRejected(RejectReason.ClientPendingLimit);
            return;
        }

        _pendingPredictions.Add(key);
    }

    public void QueueAlert(string id, int max, LiveMetrics metrics)
    {
        if (!_pendingAlerts.Contains(id) && PendingCount >= max)
        {
            metrics.CountRejected(RejectReason.ClientPendingLimit);
            return;
        }

        _pendingAlerts.Add(id);
    }

    public List<VehicleState> TakeVehicles(int max, Func<string, VehicleState?> lookup) => Take(_pendingVehicles, max, lookup);

    public List<string> TakeRemovals(int max) => Take(_pendingRemovals, max, static id => id);

    public List<ArrivalPrediction> TakePredictions(int max, Func<PredictionKey, ArrivalPrediction?> lookup) => Take(_pendingPredictions, max, lookup);

    public List<LiveAlert> TakeAlerts(int max, Func<string, LiveAlert?> lookup) => Take(_pendingAlerts, max, lookup);

    private static List<TValue> Take<TKey, TValue>(HashSet<TKey> pending, int max, Func<TKey, TValue?> lookup)
        where TValue : class
    {
        var result = new List<TValue>(Math.Min(pending.Count, max));
        if (pending.Count <= max)
        {
            foreach (var key in pending)
            {
                if (lookup(key) is { } value)
                {
                    result.Add(value);
                }
            }

            pending.Clear();
            return result;
        }

        // More than fits in one message: send the first max, keep the rest for the next batch.
        var taken = new List<TKey>(max);
        foreach (var key in pending)
        {
            if (taken.Count == max)
            {
                break;
            }

            taken.Add(key);
            if (lookup(key) is { } value)
            {
                result.Add(value);
            }
        }

        foreach (var key in taken)
        {
            pending.Remove(key);
        }

        return result;
    }

    /// <summary>A stand-alone matcher for one subscription (used to build a new subscription's initial view).</summary>
    internal sealed class Filter
    {
        private readonly LiveConnection _one = new(string.Empty);

        public Filter(Subscription s) => _one.Add(s);

        public bool Matches(VehicleState v) => _one.Matches(v);

        public bool Matches(ArrivalPrediction p) => _one.Matches(p);

        public bool Matches(LiveAlert a) => _one.Matches(a);
    }
}
