using System.Buffers.Binary;
using Fleet.Actors;
using Fleet.Actors.Persistence;
using Fleet.Gtfs.Realtime;
using Fleet.Ingest.Events;
using Fleet.Tracking;
using Fleet.Tracking.Entities;
using Fleet.Tracking.Network;
using Fleet.Tracking.Output;
using Fleet.Tracking.Replay;
using Fleet.Tracking.Schedule;
using Fleet.Tracking.Vehicles;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Sources;

/// <summary>Where a persisted replay had got to: its loop round and line (a hint for where to resume pacing).</summary>
/// <param name="Round">Loop round (0 for the first pass).</param>
/// <param name="Line">Line number within the pass (1-based), 0 before the first.</param>
public readonly record struct ReplayCheckpoint(int Round, long Line);

/// <summary>
/// A replay's tracking on the actor runtime with a journal (<c>fleet serve --store</c>): a <see cref="TrackingHost"/>
/// whose vehicle entities persist every event they apply, so a restart on the same store resumes.
/// </summary>
/// <remarks>
/// <para>Exactly once, across a crash: every event carries its line number as sequence; each vehicle persists the
/// highest it applied and skips anything at or below it. On restart the replay reads its file from the start of the
/// pass it was in (the round is in the checkpoint) and re-offers every line; the vehicles skip what they already
/// applied, and the rest (what was read but not yet durable when the process died) is applied once. The checkpoint
/// (round, line), saved every two seconds as a snapshot of <c>replay/&lt;file&gt;</c>, is only a hint: lines up to
/// it go through without pacing or live publishing, so the map catches up at once instead of replaying history
/// at the recorded pace. A hint ahead of what was durable loses nothing, one behind it repeats nothing.</para>
/// <para>Event time starts over with each loop round, so each round gets its own vehicle region
/// (<c>vehicle</c>, then <c>vehicle.r1</c>, ...): a vehicle's history in round 1 is not compared with round 0's.</para>
/// <para>Used by one replay loop (one producer); not thread-safe.</para>
/// </remarks>
public sealed partial class PersistentTracking : IAsyncDisposable
{
    private static readonly TimeSpan TickEvery = TimeSpan.FromSeconds(2);
    private readonly IJournal _journal;
    private readonly TrackingOptions _options;
    private readonly GtfsTripCatalog _catalog;
    private readonly TripMatcher _matcher;
    private readonly ITrackingOutput _output;
    private readonly IArrivalPredictor? _predictor;
    private readonly Func<IArrivalPredictor>? _predictorPerRound;
    private readonly ShardRegionOptions? _regionOptions;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _checkpointId;
    private readonly List<VehicleEvent> _rt = [];
    private readonly List<StopUpdate> _updates = [];
    private long _lastTick;
    private int _round = -1;
    private long _alreadyAppliedBefore;

    /// <summary>Creates the tracking of one recording on a journal.</summary>
    /// <param name="journal">The store (not disposed here: the composition root owns it).</param>
    /// <param name="schedule">The GTFS schedule.</param>
    /// <param name="recordingName">The recording's file name (names the checkpoint).</param>
    /// <param name="output">Where derived events go.</param>
    /// <param name="predictor">Arrival predictor.</param>
    /// <param name="time">Wall clock for the checkpoint interval.</param>
    /// <param name="logger">Logger.</param>
    /// <param name="regionOptions">Runtime settings of each round's region.</param>
    /// <param name="predictorPerRound">
    /// When set, a fresh predictor for each round instead of <paramref name="predictor"/> (a learning predictor's
    /// statistics are in event time, which starts over with every round).
    /// </param>
    /// <param name="options">Tracking's thresholds; <see cref="TrackingOptions.Live"/> when null.</param>
    public PersistentTracking(IJournal journal, Fleet.Gtfs.Schedule schedule, string recordingName, ITrackingOutput output,
        IArrivalPredictor? predictor, TimeProvider time, ILogger logger, ShardRegionOptions? regionOptions = null,
        Func<IArrivalPredictor>? predictorPerRound = null, TrackingOptions? options = null)
    {
        _options = options ?? TrackingOptions.Live();
        _predictorPerRound = predictorPerRound;
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(journal);
        ArgumentNullException.ThrowIfNull(schedule);
        _journal = journal;
        _catalog = new GtfsTripCatalog(schedule);
        _matcher = new TripMatcher(schedule);
        _output = output;
        _predictor = predictor;
        _time = time;
        _logger = logger;
        _regionOptions = regionOptions;
        _checkpointId = "replay/" + recordingName;
    }

    /// <summary>The host of the current round (null before <see cref="StartRoundAsync"/>).</summary>
    public TrackingHost? Host { get; private set; }

    /// <summary>Events skipped since start because a run before the restart had applied them.</summary>
    public long AlreadyApplied => _alreadyAppliedBefore + (Host?.AlreadyApplied ?? 0);

    /// <summary>Reads the checkpoint the last run saved (default when none).</summary>
    public async Task<ReplayCheckpoint> LoadCheckpointAsync(CancellationToken cancellationToken)
    {
        var snapshot = await _journal.LoadSnapshotAsync(_checkpointId, cancellationToken).ConfigureAwait(false);
        if (snapshot is null || snapshot.Payload.Length != 12)
        {
            return default;
        }

        return new ReplayCheckpoint(BinaryPrimitives.ReadInt32LittleEndian(snapshot.Payload), BinaryPrimitives.ReadInt64LittleEndian(snapshot.Payload.AsSpan(4)));
    }

    /// <summary>Starts tracking a loop round in its own region (stopping the previous round's, which snapshots its vehicles).</summary>
    public async Task StartRoundAsync(int round)
    {
        if (round == _round && Host is not null)
        {
            return;
        }

        if (Host is { } old)
        {
            _alreadyAppliedBefore += old.AlreadyApplied;
            await old.DisposeAsync().ConfigureAwait(false);
        }

        _round = round;
        var region = round == 0 ? TrackingHost.VehicleRegionName : $"{TrackingHost.VehicleRegionName}.r{round}";
        Host = new TrackingHost(_catalog, _options, _output, _journal, _regionOptions, _predictorPerRound?.Invoke() ?? _predictor, _logger, regionName: region);
        LogRound(region);
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
        var host = Host!;
        foreach (var e in _rt)
        {
            await host.PostAsync(e, line, cancellationToken).ConfigureAwait(false);
        }

        foreach (var u in _updates)
        {
            await host.PostStopUpdateAsync(u, cancellationToken).ConfigureAwait(false);
        }

        _rt.Clear();
        _updates.Clear();
    }

    /// <summary>Posts one HFP event with its line number as sequence.</summary>
    public ValueTask PostAsync(in VehicleEvent e, long line, CancellationToken cancellationToken) => Host!.PostAsync(e, line, cancellationToken);

    /// <summary>
    /// Every two seconds of wall time: tells the vehicles the stream clock (releases reordered events, raises stale
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
            await Host!.AdvanceClockAsync(streamTime, cancellationToken).ConfigureAwait(false);
        }

        var payload = new byte[12];
        BinaryPrimitives.WriteInt32LittleEndian(payload, _round);
        BinaryPrimitives.WriteInt64LittleEndian(payload.AsSpan(4), line);
        // Sequence = position, so the journal keeps the newest (it ignores an older snapshot).
        await _journal.EnqueueAsync(new SaveSnapshot(_checkpointId, ((long)_round << 40) | line, payload), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops the current round's host (its vehicles are snapshotted, the journal flushed).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Host is { } host)
        {
            Host = null;
            _alreadyAppliedBefore += host.AlreadyApplied;
            await host.DisposeAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 5020, Level = LogLevel.Information, Message = "Tracking persisted in region {Region}")]
    private partial void LogRound(string region);
}
