using System.Threading.Channels;
using Fleet.Actors;
using Fleet.Actors.Persistence;
using Fleet.Ingest.Events;
using Fleet.Tracking.Network;
using Fleet.Tracking.Output;
using Fleet.Tracking.Schedule;
using Fleet.Tracking.Vehicles;
using Microsoft.Extensions.Logging;

namespace Fleet.Tracking.Entities;

/// <summary>
/// Live tracking on the sharded runtime: a <c>vehicle</c> region of persistent <see cref="VehicleEntity"/>s, and
/// one consumer that joins their derived events with the GTFS-RT trip updates in the <see cref="NetworkTracker"/>
/// (trip board, stop board, aggregates) and publishes everything to an <see cref="ITrackingOutput"/>. The same
/// consumer feeds the <c>trip</c> and <c>stop</c> regions of persistent <see cref="TripEntity"/>s (GTFS-RT updates
/// joined with HFP-derived progress) and <see cref="StopEntity"/>s (upcoming arrivals, observed history), which
/// come back from the journal after a restart (<see cref="GetTripAsync"/>, <see cref="GetStopAsync"/>).
/// </summary>
/// <remarks>
/// <para>The composition root (the web host) creates one, posts every ingested event with <c>PostAsync</c>,
/// calls <see cref="AdvanceClockAsync"/> now and then with the stream's event time (staleness and the reorder
/// window need it), and queries <see cref="Network"/> for aggregates, trips and stops.</para>
/// <para>Backpressure: posting waits when the vehicle shard's mailbox is full, and entities wait when the derived
/// event channel is full, so a slow consumer slows ingest down. In live use the order of derived events across
/// vehicles follows processing; <c>fleet replay</c> uses the deterministic <c>TrackingEngine</c> instead.</para>
/// <para><c>PostAsync</c> and <see cref="AdvanceClockAsync"/> are for one producer.</para>
/// </remarks>
public sealed class TrackingHost : IAsyncDisposable
{
    /// <summary>Name of the vehicle region (part of every persistence id: keep it stable).</summary>
    public const string VehicleRegionName = "vehicle";

    /// <summary>Name of the trip region (part of every persistence id: keep it stable); a vehicle region named
    /// <c>vehicle.r2</c> goes with a trip region <c>trip.r2</c>.</summary>
    public const string TripRegionName = "trip";

    /// <summary>Name of the stop region (part of every persistence id: keep it stable).</summary>
    public const string StopRegionName = "stop";

    private readonly Channel<object> _derived;
    private readonly ITrackingOutput _output;
    private readonly IStopObserver? _observer;
    private readonly Task _consumer;
    private readonly HashSet<string> _vehicles = new(StringComparer.Ordinal);
    private DateTime _clock;
    private long _alreadyApplied;

    /// <summary>Creates and starts the host.</summary>
    /// <param name="catalog">The schedule.</param>
    /// <param name="options">Tracking thresholds.</param>
    /// <param name="output">Receives every derived event (and the network's alerts).</param>
    /// <param name="journal">Where vehicle state is persisted; in memory when null.</param>
    /// <param name="regionOptions">Runtime settings.</param>
    /// <param name="predictor">Optional arrival predictor.</param>
    /// <param name="logger">Runtime logger.</param>
    /// <param name="channelCapacity">Capacity of the derived-event channel.</param>
    /// <param name="regionName">
    /// Name of the vehicle region, part of every persistence id: <see cref="VehicleRegionName"/> unless a caller keeps
    /// separate histories in one journal (a looping replay starts each pass in its own region, because event time
    /// starts over).
    /// </param>
    public TrackingHost(ITripCatalog catalog, TrackingOptions options, ITrackingOutput output, IJournal? journal = null,
        ShardRegionOptions? regionOptions = null, IArrivalPredictor? predictor = null, ILogger? logger = null, int channelCapacity = 65_536,
        string regionName = VehicleRegionName)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        options.Validate();
        _output = output;
        _observer = predictor as IStopObserver;
        Journal = journal ?? new InMemoryJournal();
        Network = new NetworkTracker(options, catalog);
        _derived = Channel.CreateBounded<object>(new BoundedChannelOptions(channelCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        var writer = new DerivedWriter(_derived.Writer);
        Vehicles = new ShardRegion<VehicleMessage>(regionName,
            id => new VehicleEntity(id, catalog, options, writer, predictor, () => Interlocked.Increment(ref _alreadyApplied)),
            regionOptions, Journal, logger: logger);

        // Trips and stops keep separate histories whenever vehicles do (a looping replay's round suffix carries over).
        var suffix = regionName.StartsWith(VehicleRegionName, StringComparison.Ordinal) ? regionName[VehicleRegionName.Length..] : "." + regionName;
        StopRegion = new ShardRegion<StopMessage>(StopRegionName + suffix, id => new StopEntity(id), regionOptions, Journal, logger: logger);
        TripRegion = new ShardRegion<TripMessage>(TripRegionName + suffix, id => new TripEntity(id, catalog, StopRegion), regionOptions, Journal, logger: logger);
        _consumer = Task.Run(ConsumeAsync);
    }

    /// <summary>The vehicle region.</summary>
    public ShardRegion<VehicleMessage> Vehicles { get; }

    /// <summary>The trip region (persistent <see cref="TripEntity"/>s keyed by trip_id).</summary>
    public ShardRegion<TripMessage> TripRegion { get; }

    /// <summary>The stop region (persistent <see cref="StopEntity"/>s keyed by stop_id).</summary>
    public ShardRegion<StopMessage> StopRegion { get; }

    /// <summary>The journal in use.</summary>
    public IJournal Journal { get; }

    /// <summary>Trip board, stop board and aggregates (queryable from any thread).</summary>
    public NetworkTracker Network { get; }

    /// <summary>Events skipped because an earlier run had applied them (their sequence was not above the vehicle's last).</summary>
    public long AlreadyApplied => Interlocked.Read(ref _alreadyApplied);

    /// <summary>Derived events waiting for the network stage (backpressure: entities wait when it is full).</summary>
    public int DerivedQueueDepth => _derived.Reader.Count;

    /// <summary>Posts one ingested event: vehicle events to their entity, GTFS-RT stop updates to the trip board.</summary>
    public ValueTask PostAsync(VehicleEvent e, CancellationToken cancellationToken = default) => PostAsync(e, 0, cancellationToken);

    /// <summary>
    /// Posts one ingested event with its source sequence number (increasing per vehicle, e.g. the recording line):
    /// after a restart the source may start again from an earlier point, and each vehicle skips what it applied.
    /// </summary>
    public ValueTask PostAsync(VehicleEvent e, long sequence, CancellationToken cancellationToken = default)
    {
        var clock = e.ReceiveTime != default ? e.ReceiveTime : e.EventTime;
        if (clock > _clock)
        {
            _clock = clock;
        }

        if (e.Type == EventType.TripUpdateStop)
        {
            return e.TripId is null ? default : _derived.Writer.WriteAsync(StopUpdates.From(e), cancellationToken);
        }

        if (string.IsNullOrEmpty(e.VehicleId))
        {
            return default;
        }

        _vehicles.Add(e.VehicleId);
        return Vehicles.TellAsync(e.VehicleId, new VehicleMessage.ReportEvent(e, sequence), cancellationToken);
    }

    /// <summary>Posts a GTFS-RT stop update (with its cancelled/skipped status) to the trip board.</summary>
    public ValueTask PostStopUpdateAsync(StopUpdate update, CancellationToken cancellationToken = default) =>
        _derived.Writer.WriteAsync(update, cancellationToken);

    /// <summary>Tells every vehicle seen the stream clock (newest receive time posted, or <paramref name="streamTime"/> if later).</summary>
    public async ValueTask AdvanceClockAsync(DateTime? streamTime = null, CancellationToken cancellationToken = default)
    {
        if (streamTime > _clock)
        {
            _clock = streamTime.Value;
        }

        var message = new VehicleMessage.AdvanceClock(_clock);
        foreach (var id in _vehicles)
        {
            await Vehicles.TellAsync(id, message, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The trip entity's view: its GTFS-RT updates joined with the schedule and the observed progress; null when
    /// the trip has no history (in this process or in the journal).
    /// </summary>
    public async Task<TripView?> GetTripAsync(string tripId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(tripId);
        var reply = new TaskCompletionSource<TripView?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await TripRegion.TellAsync(tripId, new TripMessage.Query(reply), cancellationToken).ConfigureAwait(false);
        return await reply.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The stop entity's view: upcoming arrivals and observed history; null when the stop has no history.</summary>
    public async Task<StopView?> GetStopAsync(string stopId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(stopId);
        var reply = new TaskCompletionSource<StopView?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await StopRegion.TellAsync(stopId, new StopMessage.Query(reply), cancellationToken).ConfigureAwait(false);
        return await reply.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops the vehicle region (draining its mailboxes), then the consumer, then the trip and stop regions.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        await Vehicles.StopAsync(cancellationToken).ConfigureAwait(false);
        _derived.Writer.TryComplete();
        await _consumer.ConfigureAwait(false);

        // Trips send to stops, so trips drain first.
        await TripRegion.StopAsync(cancellationToken).ConfigureAwait(false);
        await StopRegion.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await Vehicles.DisposeAsync().ConfigureAwait(false);
        await TripRegion.DisposeAsync().ConfigureAwait(false);
        await StopRegion.DisposeAsync().ConfigureAwait(false);
    }

    private async Task ConsumeAsync()
    {
        var fanOut = new FanOutOutput(_output);
        var network = new ListOutput();
        await foreach (var item in _derived.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            // Per item: a failure on one event is not a reason to stop tracking the rest.
            network.Events.Clear();
            if (item is DerivedEvent d)
            {
                // A learning predictor (the arrival model) takes the stop events from here, the single consumer.
                _observer?.Observe(d);
                Network.OnDerived(d, network);
                fanOut.Publish(d);
                await ForwardAsync(d).ConfigureAwait(false);
            }
            else if (item is StopUpdate u)
            {
                Network.OnStopUpdate(u, network);
                await TripRegion.TellAsync(u.TripId, new TripMessage.StopTimeUpdate(u)).ConfigureAwait(false);
            }

            foreach (var n in network.Events)
            {
                fanOut.Publish(n);
            }
        }
    }

    /// <summary>Hands a derived event to the trip and stop entities it concerns.</summary>
    private async ValueTask ForwardAsync(DerivedEvent d)
    {
        switch (d.Type)
        {
            case DerivedEventType.TripStarted or DerivedEventType.TripEnded or DerivedEventType.Departure when d.TripId is not null:
                await TripRegion.TellAsync(d.TripId, new TripMessage.Progress(d)).ConfigureAwait(false);
                break;
            case DerivedEventType.Arrival when d.TripId is not null:
                await TripRegion.TellAsync(d.TripId, new TripMessage.Progress(d)).ConfigureAwait(false);
                if (d.StopId is not null)
                {
                    await StopRegion.TellAsync(d.StopId, new StopMessage.Arrived(d)).ConfigureAwait(false);
                }

                break;
            case DerivedEventType.Prediction when d is { StopId: not null, TripId: not null, Predicted: not null }:
                await StopRegion.TellAsync(d.StopId, new StopMessage.Upcoming(
                    new UpcomingArrival(d.TripId, d.RouteId, d.VehicleId, d.Predicted.Value, d.Scheduled, FromTripUpdate: false))).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>Adapts the object channel to the entities' typed writer.</summary>
    private sealed class DerivedWriter(ChannelWriter<object> inner) : ChannelWriter<DerivedEvent>
    {
        public override bool TryWrite(DerivedEvent item) => inner.TryWrite(item);

        public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default) => inner.WaitToWriteAsync(cancellationToken);

        public override ValueTask WriteAsync(DerivedEvent item, CancellationToken cancellationToken = default) => inner.WriteAsync(item, cancellationToken);

        public override bool TryComplete(Exception? error = null) => inner.TryComplete(error);
    }
}
