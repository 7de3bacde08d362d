using Fleet.Dashboard.Live;

namespace Fleet.Dashboard.Cli;

/// <summary>Server-side times of each pushed prediction: when its send started and when SignalR had written it,
/// both from its <c>updated</c> stamp.</summary>
internal sealed class SendTiming(int capacity = 1 << 18)
{
    private readonly Lock _gate = new();
    private readonly List<double> _queued = new(capacity);
    private readonly List<double> _written = new(capacity);
    private bool _on;

    public double QueueP99 => P99(_queued);

    public double WrittenP99 => P99(_written);

    public void Start()
    {
        lock (_gate)
        {
            _on = true;
        }
    }

    public void Add(bool written, object payload, DateTime now)
    {
        if (payload is not List<ArrivalPrediction> predictions)
        {
            return;
        }

        lock (_gate)
        {
            if (!_on)
            {
                return;
            }

            var into = written ? _written : _queued;
            foreach (var p in predictions)
            {
                into.Add((now - p.Updated).TotalMilliseconds);
            }
        }
    }

    private double P99(List<double> values)
    {
        lock (_gate)
        {
            var sorted = values.Order().ToArray();
            return sorted.Length == 0 ? double.NaN : Math.Round(sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(0.99 * sorted.Length) - 1)], 1);
        }
    }
}

/// <summary>Wraps the hub transport to time each push (<c>fleet bench hub</c>, <c>fleet bench e2e</c>).</summary>
internal sealed class TimedTransport(ILiveTransport inner, SendTiming timing) : ILiveTransport
{
    public ILiveClient Client(string clientId) => new TimedClient(inner.Client(clientId), timing);

    private sealed class TimedClient(ILiveClient inner, SendTiming timing) : ILiveClient
    {
        public Task Vehicles(IReadOnlyList<VehicleState> vehicles) => Timed(vehicles, inner.Vehicles);

        public Task Removed(IReadOnlyList<string> vehicleIds) => Timed(vehicleIds, inner.Removed);

        public Task Predictions(IReadOnlyList<ArrivalPrediction> predictions) => Timed(predictions, inner.Predictions);

        public Task Withdrawn(IReadOnlyList<PredictionWithdrawal> withdrawals) => Timed(withdrawals, inner.Withdrawn);

        public Task Alerts(IReadOnlyList<LiveAlert> alerts) => Timed(alerts, inner.Alerts);

        private async Task Timed<T>(IReadOnlyList<T> payload, Func<IReadOnlyList<T>, Task> send)
        {
            timing.Add(written: false, payload, DateTime.UtcNow);
            await send(payload).ConfigureAwait(false);
            timing.Add(written: true, payload, DateTime.UtcNow);
        }
    }
}
