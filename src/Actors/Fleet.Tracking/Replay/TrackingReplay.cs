using Fleet.Gtfs.Realtime;
using Fleet.Ingest.Events;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
using Fleet.Tracking.Network;
using Fleet.Tracking.Output;
using Fleet.Tracking.Schedule;
using TransitRealtime;

namespace Fleet.Tracking.Replay;

/// <summary>What a replay through tracking read and produced.</summary>
/// <param name="Lines">Recording lines read.</param>
/// <param name="HfpEvents">HFP events parsed.</param>
/// <param name="Rejected">Lines rejected (malformed line or HFP message), counted by the parser with reasons.</param>
/// <param name="GtfsRtSnapshots">GTFS-RT snapshots decoded.</param>
/// <param name="GtfsRtFailures">GTFS-RT snapshots that failed to decode.</param>
/// <param name="Tracking">The engine's counters.</param>
public readonly record struct ReplayFigures(long Lines, long HfpEvents, long Rejected, long GtfsRtSnapshots, long GtfsRtFailures, TrackingCounters Tracking);

/// <summary>
/// Replays recordings (HFP lines and <c>gtfs-rt/&lt;feed&gt;</c> lines) through a <see cref="TrackingEngine"/>:
/// what <c>fleet replay FILE... --gtfs GTFS --out-events FILE</c> runs, as fast as it can.
/// </summary>
/// <remarks>
/// HFP lines are parsed with one <see cref="HfpParser"/>; GTFS-RT snapshots are decoded, their vehicle positions go
/// to the vehicles and their trip updates (including cancelled trips and skipped stops, which the normalized events
/// do not carry) to the trip board. Files are read one after the other, in the order given. Not thread-safe.
/// </remarks>
public sealed class TrackingReplay
{
    private readonly TrackingEngine _engine;
    private readonly TripMatcher? _matcher;
    private readonly HfpStream _hfp = new();
    private readonly List<VehicleEvent> _rt = [];
    private long _lines;
    private long _snapshots;
    private long _rtFailures;

    /// <summary>Creates a replay over an engine; <paramref name="schedule"/> (optional) joins GTFS-RT trips without trip_id.</summary>
    public TrackingReplay(TrackingEngine engine, Fleet.Gtfs.Schedule? schedule)
    {
        ArgumentNullException.ThrowIfNull(engine);
        _engine = engine;
        _matcher = schedule is null ? null : new TripMatcher(schedule);
    }

    /// <summary>The parser's figures (rejections by reason).</summary>
    public HfpStream Hfp => _hfp;

    /// <summary>Figures so far.</summary>
    public ReplayFigures Figures => new(_lines, _hfp.Parsed, _hfp.Rejections.Total, _snapshots, _rtFailures, _engine.Counters);

    /// <summary>Reads one recording file to its end.</summary>
    public void ReadFile(string path, CancellationToken cancellationToken = default)
    {
        using var reader = RecordingReader.Open(path);
        Read(reader, cancellationToken);
    }

    /// <summary>Reads a recording from a stream (already decompressed) to its end.</summary>
    public void ReadStream(Stream stream, string sourceName, CancellationToken cancellationToken = default)
    {
        using var reader = new RecordingReader(stream, sourceName);
        Read(reader, cancellationToken);
    }

    /// <summary>Processes one replayed message (from the <c>Replayer</c>, which merges files by receive time).</summary>
    public void Process(RecordedMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        _lines++;
        switch (_hfp.Process(message, out var e))
        {
            case HfpOutcome.Event:
                _engine.Post(e);
                break;
            case HfpOutcome.GtfsRt:
                OnGtfsRt(message.Payload.Span, message.ReceiveTime);
                break;
        }
    }

    /// <summary>Processes one line read by a <see cref="RecordingReader"/> (a paced live replay reads lines itself).</summary>
    public void Process(RecordingLine line)
    {
        _lines++;
        switch (_hfp.Process(line, out var e))
        {
            case HfpOutcome.Event:
                _engine.Post(e);
                break;
            case HfpOutcome.GtfsRt:
                OnGtfsRt(line.Payload, line.ReceiveTime);
                break;
        }
    }

    /// <summary>Runs a batch: events that are out of the lateness window are processed and their outputs published.</summary>
    public void Flush() => _engine.RunBatch();

    private void Read(RecordingReader reader, CancellationToken cancellationToken)
    {
        while (reader.TryRead(out var line))
        {
            if (((_lines + 1) & 0xFFFF) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            Process(line);
        }
    }

    /// <summary>Ends the replay: flushes every vehicle.</summary>
    public void Complete() => _engine.Complete();

    private void OnGtfsRt(ReadOnlySpan<byte> payload, DateTime receiveTime)
    {
        FeedMessage feed;
        try
        {
            feed = GtfsRtDecoder.Decode(payload);
        }
        catch (GtfsRtFormatException)
        {
            _rtFailures++;
            return;
        }

        _snapshots++;
        _rt.Clear();
        GtfsRtNormalizer.Normalize(feed, receiveTime, _matcher, _rt);
        foreach (var e in _rt)
        {
            if (e.Type != EventType.TripUpdateStop)
            {
                _engine.Post(e);
            }
        }

        foreach (var u in GtfsRtStopUpdates.Extract(feed, receiveTime, _matcher))
        {
            _engine.Post(u);
        }
    }
}

/// <summary>Reads GTFS-RT TripUpdates as <see cref="StopUpdate"/>s, keeping cancelled trips and skipped stops.</summary>
public static class GtfsRtStopUpdates
{
    /// <summary>The stop updates of a feed, in feed order.</summary>
    public static IEnumerable<StopUpdate> Extract(FeedMessage feed, DateTime receiveTime, TripMatcher? matcher)
    {
        ArgumentNullException.ThrowIfNull(feed);
        var header = feed.Header is { HasTimestamp: true } h ? GtfsRtNormalizer.FromPosix(h.Timestamp) : receiveTime;
        foreach (var entity in feed.Entity)
        {
            if (entity.IsDeleted || entity.TripUpdate is not { } tu || tu.Trip is not { } trip)
            {
                continue;
            }

            // A feed's clock may run ahead of ours: never trusted beyond what the event-time clock allows (it decides
            // which stop times have happened, and moves the live view's time).
            var time = tu.HasTimestamp ? GtfsRtNormalizer.FromPosix(tu.Timestamp) : header;
            if (receiveTime != default && time > receiveTime + EventTimeClock.MaxAhead)
            {
                time = receiveTime + EventTimeClock.MaxAhead;
            }
            var tripId = trip.HasTripId ? trip.TripId : null;
            DateOnly? date = trip.HasStartDate ? TripMatcher.ParseDate(trip.StartDate) : null;
            if (tripId is null && matcher is not null && matcher.Match(trip, time) is { IsMatched: true } m)
            {
                tripId = matcher.Schedule.Trips[m.Instance.TripIndex].Id;
                date = m.Instance.ServiceDate;
            }

            if (tripId is null)
            {
                continue;
            }

            var vehicle = tu.Vehicle is { HasId: true } v ? v.Id : null;
            var route = trip.HasRouteId ? trip.RouteId : null;
            if (trip.HasScheduleRelationship && trip.ScheduleRelationship is TripDescriptor.Types.ScheduleRelationship.Canceled
                    or TripDescriptor.Types.ScheduleRelationship.Deleted)
            {
                yield return new StopUpdate(time, tripId, date, route, vehicle, null, -1, null, null, null, StopUpdateStatus.TripCancelled);
                continue;
            }

            foreach (var stu in tu.StopTimeUpdate)
            {
                var status = !stu.HasScheduleRelationship ? StopUpdateStatus.Scheduled : stu.ScheduleRelationship switch
                {
                    TripUpdate.Types.StopTimeUpdate.Types.ScheduleRelationship.Skipped => StopUpdateStatus.Skipped,
                    TripUpdate.Types.StopTimeUpdate.Types.ScheduleRelationship.NoData => StopUpdateStatus.NoData,
                    _ => StopUpdateStatus.Scheduled,
                };
                DateTime? arrival = stu.Arrival is { HasTime: true } a ? GtfsRtNormalizer.FromPosix(a.Time) : null;
                DateTime? departure = stu.Departure is { HasTime: true } d ? GtfsRtNormalizer.FromPosix(d.Time) : null;
                int? delay = stu.Arrival is { HasDelay: true } ad ? ad.Delay : stu.Departure is { HasDelay: true } dd ? dd.Delay : tu.HasDelay ? tu.Delay : null;
                yield return new StopUpdate(time, tripId, date, route, vehicle, stu.HasStopId ? stu.StopId : null,
                    stu.HasStopSequence ? (int)Math.Min(stu.StopSequence, int.MaxValue) : -1, arrival, departure, delay, status);
            }
        }
    }
}
