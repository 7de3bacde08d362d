using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Live;

public sealed partial class LiveEvents
{
    // ---- clients --------------------------------------------------------------------------------------------

    /// <summary>Registers a client (a hub connection). Pushes start after its first subscription.</summary>
    /// <param name="clientId">The connection id.</param>
    /// <param name="abort">Closes the connection; called once when one of its pushes has not completed within
    /// <see cref="LiveOptions.SlowClientTimeout"/> (a client that stopped reading). Null: never closed.</param>
    public void Connect(string clientId, Action? abort = null)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        _clients.TryAdd(clientId, new LiveConnection(clientId, abort));
        Metrics.Clients = _clients.Count;
    }

    /// <summary>Forgets a client.</summary>
    public void Disconnect(string clientId)
    {
        if (_clients.TryRemove(clientId, out _))
        {
            RebuildIndex();
        }

        Metrics.Clients = _clients.Count;
    }

    /// <summary>
    /// Adds a subscription. Everything it matches now is queued for the client's next push (its initial view);
    /// afterwards only changes are pushed. Throws <see cref="ArgumentException"/> on an invalid or excess one.
    /// </summary>
    public void Subscribe(string clientId, Subscription subscription)
    {
        var client = _clients.TryGetValue(clientId, out var c) ? c : throw new ArgumentException($"unknown client '{clientId}'", nameof(clientId));
        lock (client.Gate)
        {
            if (!client.Subscriptions.Contains(subscription))
            {
                if (client.Subscriptions.Count >= _options.MaxSubscriptionsPerClient)
                {
                    throw new ArgumentException($"at most {_options.MaxSubscriptionsPerClient} subscriptions per connection");
                }

                client.Add(subscription);
            }
        }

        // The index first, then the initial view: a change published before the index has it is in the state the
        // view reads; one published after is distributed through the index.
        RebuildIndex();
        Interlocked.MemoryBarrier();
        lock (client.Gate)
        {
            var single = new LiveConnection.Filter(subscription);
            foreach (var (id, entry) in _vehicles)
            {
                if (single.Matches(entry.State))
                {
                    client.QueueVehicle(id, _options.MaxPendingPerClient, Metrics);
                }
            }

            foreach (var (stopId, byTrip) in _predictionsByStop)
            {
                foreach (var p in byTrip.Values)
                {
                    if (single.Matches(p))
                    {
                        client.QueuePrediction(new PredictionKey(stopId, p.TripId), _options.MaxPendingPerClient, Metrics);
                    }
                }
            }

            foreach (var a in _alerts.Values)
            {
                if (a.IsGlobal || single.Matches(a))
                {
                    client.QueueAlert(a.Id, _options.MaxPendingPerClient, Metrics);
                }
            }
        }

        Signal();
    }

    /// <summary>Removes a subscription; returns false when the client did not hold it.</summary>
    public bool Unsubscribe(string clientId, Subscription subscription)
    {
        if (!_clients.TryGetValue(clientId, out var client))
        {
            return false;
        }

        bool removed;
        lock (client.Gate)
        {
            removed = client.Remove(subscription);
        }

        RebuildIndex();
        return removed;
    }

    /// <summary>The subscriptions a client holds (for tests and diagnostics).</summary>
    public IReadOnlyList<Subscription> SubscriptionsOf(string clientId)
    {
        if (!_clients.TryGetValue(clientId, out var client))
        {
            return [];
        }

        lock (client.Gate)
        {
            return [.. client.Subscriptions];
        }
    }

    /// <summary>The send queue of one client (what a slow client holds on the server), or null when not connected.</summary>
    public LiveClientStats? ClientStats(string clientId)
    {
        if (!_clients.TryGetValue(clientId, out var client))
        {
            return null;
        }

        var now = _time.GetTimestamp();
        lock (client.Gate)
        {
            return client.Stats(_time, now);
        }
    }

    /// <summary>The send queues of all clients summed up, for <c>/metrics</c>.</summary>
    public LiveClientsSummary ClientsSummary()
    {
        var now = _time.GetTimestamp();
        int maxPending = 0, sending = 0, stalled = 0;
        long pending = 0;
        foreach (var client in _clients.Values)
        {
            LiveClientStats s;
            lock (client.Gate)
            {
                s = client.Stats(_time, now);
            }

            pending += s.PendingItems;
            maxPending = Math.Max(maxPending, s.PendingItems);
            sending += s.SendsInFlight;
            if (s.OldestSendInFlight >= TimeSpan.FromSeconds(1))
            {
                stalled++;
            }
        }

        return new LiveClientsSummary(pending, maxPending, sending, stalled);
    }

    // The clients per stop, route and vehicle id, the box subscribers and every subscribed client, rebuilt (copy on
    // write) when a subscription changes, so that a change is matched against the clients that want it instead of
    // against every client.
    private void RebuildIndex()
    {
        lock (_indexGate)
        {
            var stops = new Dictionary<string, List<LiveConnection>>(StringComparer.Ordinal);
            var routes = new Dictionary<string, List<LiveConnection>>(StringComparer.Ordinal);
            var vehicles = new Dictionary<string, List<LiveConnection>>(StringComparer.Ordinal);
            var boxes = new List<LiveConnection>();
            var all = new List<LiveConnection>();
            foreach (var client in _clients.Values)
            {
                lock (client.Gate)
                {
                    if (client.Subscriptions.Count == 0)
                    {
                        continue;
                    }

                    all.Add(client);
                    var hasBox = false;
                    foreach (var s in client.Subscriptions)
                    {
                        var into = s.Kind switch
                        {
                            SubscriptionKind.Stop => stops,
                            SubscriptionKind.Route => routes,
                            SubscriptionKind.Vehicle => vehicles,
                            _ => null,
                        };
                        if (into is null)
                        {
                            hasBox = true;
                        }
                        else if (into.TryGetValue(s.Id, out var list))
                        {
                            list.Add(client);
                        }
                        else
                        {
                            into[s.Id] = [client];
                        }
                    }

                    if (hasBox)
                    {
                        boxes.Add(client);
                    }
                }
            }

            static Dictionary<string, LiveConnection[]> Freeze(Dictionary<string, List<LiveConnection>> d) =>
                d.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray(), StringComparer.Ordinal);

            _index = new SubscriptionIndex(Freeze(stops), Freeze(routes), Freeze(vehicles), [.. boxes], [.. all]);
        }
    }
}
