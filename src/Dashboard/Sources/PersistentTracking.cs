using Akka.Actor;
using Fleet.Actors.Hosting;
using Fleet.Actors.Partitions;
using Fleet.Actors.Replay;
using Fleet.Actors.Streams;
using Fleet.Gtfs.Realtime;
using Fleet.Ingest.Events;
using Fleet.Tracking;
using Fleet.Tracking.Network;
using Fleet.Tracking.Output;
using Fleet.Tracking.Partitions;
using Fleet.Tracking.Replay;
using Fleet.Tracking.Schedule;
using Fleet.Tracking.Vehicles;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Sources;

/// <summary>
/// A replay's tracking on Akka.NET with a store (<c>fleet serve --store</c>): the partitions of the vehicle stream as
/// sharded persistent actors (<see cref="VehiclePartitionActor"/>, Akka.Persistence.Sql), fed by an Akka.Streams graph
/// (<see cref="TrackingStream"/>), so a restart on the same store resumes.
/// </summary>
/// <remarks>
/// <para>Exactly once, across a crash: every event carries its line number as sequence; each vehicle keeps the
/// highest it applied (in its partition's journal and snapshots) and skips anything at or below it. On restart the
/// replay reads its file from the start of the pass it was in (the round is in the checkpoint) and offers every line
/// again; the vehicles skip what they already applied, and the rest (read but not yet journaled when the process
/// died) is applied once. The checkpoint (round, line), saved every two seconds by a persistent actor, is only a hint:
/// lines up to it go through without pacing or live publishing, so the map catches up at once instead of replaying
/// history at the recorded pace. A hint ahead of what was durable loses nothing, one behind it repeats nothing.</para>
/// <para>Event time starts over with each loop round or seek, so each round gets its own partition region
/// (<c>vehicle-partition</c>, then <c>vehicle-partition.r1</c>, ...): a vehicle's history in round 1 is not compared
/// with round 0's.</para>
/// <para>Used by one replay loop (one producer); not thread-safe, except the figures.</para>
/// </remarks>
public sealed partial class PersistentTracking : IAsyncDisposable
{
    private static readonly TimeSpan TickEvery = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan AskTimeout = TimeSpan.FromMinutes(1);
    private readonly TrackingCluster _cluster;
    private readonly TrackingOptions _options;
    private readonly GtfsTripCatalog _catalog;
    private readonly TripMatcher _matcher;
    private readonly ITrackingOutput _output;
    private readonly IArrivalPredictor? _predictor;
    private readonly Func<IArrivalPredictor>? _predictorPerRound;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _recording;
    private readonly List<VehicleEvent> _rt = [];
    private readonly List<StopUpdate> _updates = [];
    private IActorRef? _checkpoint;
    private IActorRef? _region;
    private long _lastTick;
    private int _round = -1;
    private long _alreadyAppliedBefore;
    private long _journaledBefore;
    private TrackingDrops _dropsBefore;

    /// <summary>Creates the tracking of one recording on the node of <paramref name="cluster"/>.</summary>
    /// <param name="cluster">The node (started on first use; not disposed here: the composition root owns it).</param>
    /// <param name="schedule">The GTFS schedule.</param>
    /// <param name="recordingName">The recording's file name (names the checkpoint).</param>
    /// <param name="output">Where derived events go.</param>
    /// <param name="predictor">Arrival predictor.</param>
    /// <param name="time">Wall clock for the checkpoint interval.</param>
    /// <param name="logger">Logger.</param>
    /// <param name="predictorPerRound">
    /// When set, a fresh predictor for each round instead of <paramref name="predictor"/> (a learning predictor's
    /// statistics are in event time, which starts over with every round).
    /// </param>
    /// <param name="options">Tracking's thresholds; <see cref="TrackingOptions.Live"/> when null.</param>
    public PersistentTracking(TrackingCluster cluster, Fleet.Gtfs.Schedule schedule, string recordingName, ITrackingOutput output,
        IArrivalPredictor? predictor, TimeProvider time, ILogger logger, Func<IArrivalPredictor>? predictorPerRound = null, TrackingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(output);
        _options = options ?? TrackingOptions.Live();
        _cluster = cluster;
        _predictorPerRound = predictorPerRound;
        _catalog = new GtfsTripCatalog(schedule);
        _matcher = new TripMatcher(schedule);
        _output = output;
        _predictor = predictor;
        _time = time;
        _logger = logger;
        _recording = recordingName;
    }

    /// <summary>The current round's stream (null before <see cref="StartRoundAsync"/>).</summary>
    public TrackingStream? Stream { get; private set; }

    /// <summary>Events skipped since start because a run before the restart had applied them.</summary>
    public long AlreadyApplied => _alreadyAppliedBefore + (Stream?.AlreadyApplied ?? 0);

    /// <summary>Late, duplicate and corrected events and unknown journeys since start, every round.</summary>
    public TrackingDrops Drops => _dropsBefore + (Stream?.Drops ?? default);

    /// <summary>Events journaled since start (in acknowledged batches).</summary>
    public long Journaled => _journaledBefore + (Stream?.Journaled ?? 0);

    /// <summary>Reads the checkpoint the last run saved ((0, 0) when none).</summary>
    public async Task<ReplayCheckpoint> LoadCheckpointAsync(CancellationToken cancellationToken)
    {
        var checkpoint = await CheckpointAsync().ConfigureAwait(false);
        return await checkpoint.Ask<ReplayCheckpoint>(GetReplayCheckpoint.Instance, AskTimeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Starts tracking a round in its own partition region, after the previous round's stream has drained.</summary>
    public async Task StartRoundAsync(int round)
    {
        if (round == _round && Stream is not null)
        {
            return;
        }

        await StopStreamAsync().ConfigureAwait(false);
        _round = round;
        var system = await _cluster.GetSystemAsync().ConfigureAwait(false);
        var name = round == 0 ? _cluster.Options.Region : $"{_cluster.Options.Region}.r{round}";
        var predictor = _predictorPerRound?.Invoke() ?? _predictor;
        var region = _region = await FleetAkka.StartRegionAsync(system, _cluster.Options with { Region = name },
            new TrackingDomain(_catalog, _options, predictor)).ConfigureAwait(false);
        Stream = TrackingStream.Start(system, region, _cluster.Options.Partitions, new NetworkTracker(_options, _catalog), _output, predictor as IStopObserver);
        LogRound(name);
    }

    /// <summary>Decodes a GTFS-RT snapshot line now (the line's bytes do not outlive the caller's await).</summary>
    public void TakeGtfsRt(ReadOnlySpan<byte> payload, DateTime receiveTime)
    {
        _rt.Clear();
        _updates.Clear();
        TransitRealtime.FeedMessage feed;
        try
        {
            feed = GtfsRtDecoder.Decode(payload);
        }
        catch (GtfsRtFormatException)
        {
            return;
        }

        GtfsRtNormalizer.Normalize(feed, receiveTime, _matcher, _rt);
        _rt.RemoveAll(e => e.Type == EventType.TripUpdateStop);
        _updates.AddRange(GtfsRtStopUpdates.Extract(feed, receiveTime, _matcher));
    }

    /// <summary>Posts the GTFS-RT snapshot taken last, its positions with the line as sequence.</summary>
    public async ValueTask PostGtfsRtAsync(long line, CancellationToken cancellationToken)
    {
        var stream = Stream!;
        foreach (var e in _rt)
        {
            await stream.OfferAsync(e, line, cancellationToken).ConfigureAwait(false);
        }

        foreach (var u in _updates)
        {
            await stream.OfferAsync(u, cancellationToken).ConfigureAwait(false);
        }

        _rt.Clear();
        _updates.Clear();
    }

    /// <summary>Posts one HFP event with its line number as sequence.</summary>
    public async ValueTask PostAsync(VehicleEvent e, long line, CancellationToken cancellationToken) =>
        await Stream!.OfferAsync(e, line, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// Every two seconds of wall time: tells the partitions the stream clock (releases reordered events, raises stale
    /// alerts) and saves the checkpoint. Cheap otherwise.
    /// </summary>
    public async ValueTask TickAsync(long line, DateTime streamTime, CancellationToken cancellationToken, bool force = false)
    {
        var now = _time.GetTimestamp();
        if (!force && _lastTick != 0 && _time.GetElapsedTime(_lastTick, now) < TickEvery)
        {
            return;
        }

        _lastTick = now;
        if (streamTime != default)
        {
            await Stream!.OfferClockAsync(streamTime, cancellationToken).ConfigureAwait(false);
        }

        (await CheckpointAsync().ConfigureAwait(false)).Tell(new ReplayCheckpoint(_round, line));
    }

    /// <summary>Drains the current round's stream (everything offered is tracked and published).</summary>
    public async ValueTask DisposeAsync() => await StopStreamAsync().ConfigureAwait(false);

    private async Task StopStreamAsync()
    {
        if (Stream is { } stream)
        {
            Stream = null;
            try
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
            catch (Akka.Streams.AbruptTerminationException)
            {
                // The node's actor system stopped first (the host is shutting down): nothing is left to drain.
            }

            _alreadyAppliedBefore += stream.AlreadyApplied;
            _journaledBefore += stream.Journaled;
            _dropsBefore += stream.Drops;
        }

        // The round is over (a loop or a seek starts the next in a region of its own): its partitions stop, so a replay
        // that loops all day does not keep every past round's vehicles in memory.
        if (_region is { } region)
        {
            _region = null;
            region.Tell(Akka.Cluster.Sharding.GracefulShutdown.Instance);
        }
    }

    private async Task<IActorRef> CheckpointAsync()
    {
        if (_checkpoint is null)
        {
            var system = await _cluster.GetSystemAsync().ConfigureAwait(false);
            _checkpoint = system.ActorOf(Props.Create(() => new ReplayCheckpointActor(_recording)), "replay-checkpoint-" + Uri.EscapeDataString(_recording).Replace("%", "_", StringComparison.Ordinal));
        }

        return _checkpoint;
    }

    [LoggerMessage(EventId = 5020, Level = LogLevel.Information, Message = "Tracking persisted in partition region {Region}")]
    private partial void LogRound(string region);
}
