using Fleet.Gtfs;
using Fleet.Gtfs.Realtime;
using TransitRealtime;

namespace Fleet.Predict.Offline;

/// <summary>A local time-of-day window <c>[From, To)</c> of feed polls, e.g. <c>05:00-13:00</c>.</summary>
/// <param name="From">Inclusive start.</param>
/// <param name="To">Exclusive end; 24:00 is written as <see cref="TimeSpan.FromHours(double)"/> 24.</param>
public readonly record struct PollWindow(TimeSpan From, TimeSpan To)
{
    /// <summary>The whole day.</summary>
    public static PollWindow All { get; } = new(TimeSpan.Zero, TimeSpan.FromHours(24));

    /// <summary>True when a local time of day is inside.</summary>
    public bool Contains(TimeSpan timeOfDay) => timeOfDay >= From && timeOfDay < To;

    /// <summary>Parses <c>HH:mm-HH:mm</c> (the end may be 24:00).</summary>
    public static bool TryParse(string? text, out PollWindow window)
    {
        window = All;
        var parts = text?.Split('-', 2, StringSplitOptions.TrimEntries);
        if (parts is not { Length: 2 } || !TryTime(parts[0], out var from) || !TryTime(parts[1], out var to) || to <= from)
        {
            return false;
        }

        window = new PollWindow(from, to);
        return true;
    }

    private static bool TryTime(string s, out TimeSpan time)
    {
        time = default;
        var hm = s.Split(':');
        if (hm.Length != 2 || !int.TryParse(hm[0], out var h) || !int.TryParse(hm[1], out var m) || h is < 0 or > 24 || m is < 0 or > 59 || (h == 24 && m != 0))
        {
            return false;
        }

        time = new TimeSpan(h, m, 0);
        return true;
    }

    /// <inheritdoc />
    public override string ToString() => $"{(int)From.TotalHours:00}:{From.Minutes:00}-{(int)To.TotalHours:00}:{To.Minutes:00}";
}

/// <summary>What reading a TripUpdates archive found.</summary>
/// <param name="Day">The replay day: a prediction point per trip per poll, the observed stop events as ground truth.</param>
/// <param name="Snapshots">Snapshots read (inside the window).</param>
/// <param name="Entities">Trip updates read.</param>
/// <param name="TripsMatched">Trips the static schedule knows (predicted and scored).</param>
/// <param name="TripsSkipped">Trips it does not know (counted, not guessed).</param>
/// <param name="Events">Distinct observed arrival and departure events (a stop's arrival, a stop's departure).</param>
/// <param name="Rejections">Snapshots, entities or stop updates not used, by reason.</param>
/// <param name="Observed">Every distinct observed event as reported (no filled-in departures), in trip and stop order.</param>
public sealed record TripUpdateDay(
    ReplayDay Day, int Snapshots, long Entities, int TripsMatched, int TripsSkipped, long Events, IReadOnlyDictionary<string, long> Rejections,
    IReadOnlyList<ObservedStopEvent> Observed);

/// <summary>An observed arrival or departure of a TripUpdates day.</summary>
/// <param name="Trip">The trip.</param>
/// <param name="StopTimeIndex">The stop's index in the trip's stop times.</param>
/// <param name="IsDeparture">Departure (else arrival).</param>
/// <param name="TimeUnix">When it happened (the latest report of it).</param>
/// <param name="KnownAtUnix">The poll that first reported the stop.</param>
/// <param name="DelaySeconds">The delay the feed gave with it; null when none.</param>
public readonly record struct ObservedStopEvent(TripKey Trip, int StopTimeIndex, bool IsDeparture, double TimeUnix, double KnownAtUnix, int? DelaySeconds);

/// <summary>
/// Reads a recorded day of GTFS-Realtime TripUpdates (an archive of snapshots: folder, .zip or .tar.gz) as a replay
/// day for training and evaluation, tracking from TripUpdates alone: every stop_time_update carrying an arrival or
/// departure time at or before its poll is an observed stop event (feeds such as Auckland's report each vehicle's
/// latest observed event); every poll of a trip is a prediction point (its reported delay, progress from the events
/// known by then); the events of the whole archive are the ground truth.
/// </summary>
/// <remarks>
/// <para>Trips resolve by <c>trip_id</c> against the static schedule; the service date is the trip's
/// <c>start_date</c> when given, else the date (the poll's local date or the day before) on which the trip runs and
/// whose scheduled times are nearest the poll. An event reported again later keeps its latest time; it is known from
/// the poll that first reported the stop. Updates whose time lies after the poll are predictions, not observations,
/// and are not ground truth.</para>
/// </remarks>
public static class TripUpdateDays
{
    /// <summary>Reads an archive against a schedule.</summary>
    /// <param name="schedule">The static schedule (trips that it does not know are skipped and counted).</param>
    /// <param name="archive">A folder, .zip or .tar.gz of TripUpdates snapshots (protobuf or JSON).</param>
    /// <param name="options">Prediction-point options.</param>
    /// <param name="window">Polls used (local time of day of the header timestamp); <see cref="PollWindow.All"/> for all.</param>
    /// <param name="progress">Called with snapshots read; may be null.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <exception cref="InvalidDataException">A corrupt archive, or one without any TripUpdates snapshot.</exception>
    public static TripUpdateDay Read(
        Schedule schedule, string archive, ReplayOptions options, PollWindow window, Action<int>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(archive);
        var replay = new OfflineReplay(schedule, options);
        var actuals = new ActualStopTimes();
        var rejections = new SortedDictionary<string, long>(StringComparer.Ordinal);
        void Reject(string reason) => rejections[reason] = rejections.GetValueOrDefault(reason) + 1;
        var skipped = new HashSet<string>(StringComparer.Ordinal);
        var matched = new HashSet<TripKey>();
        var serviceDates = new Dictionary<(int Trip, DateOnly Local), DateOnly?>();
        var delays = new Dictionary<(TripKey, int, bool), int>();
        var snapshots = 0;
        var read = 0;
        long entities = 0, events = 0;
        foreach (var entry in GtfsRtArchive.Read(archive))
        {
            cancellationToken.ThrowIfCancellationRequested();
            read++;
            progress?.Invoke(read);
            FeedMessage feed;
            try
            {
                feed = GtfsRtDecoder.DecodeAny(entry.Bytes);
            }
            catch (GtfsRtFormatException)
            {
                Reject("snapshot_undecodable");
                continue;
            }

            if (feed.Header is not { HasTimestamp: true, Timestamp: > 0 })
            {
                Reject("snapshot_without_timestamp");
                continue;
            }

            var poll = (double)feed.Header.Timestamp;
            var pollUtc = DateTime.UnixEpoch.AddSeconds(poll);
            var local = TimeZoneInfo.ConvertTimeFromUtc(pollUtc, schedule.TimeZone);
            if (!window.Contains(local.TimeOfDay))
            {
                continue;
            }

            snapshots++;
            foreach (var entity in feed.Entity)
            {
                if (entity.TripUpdate is not { } tu)
                {
                    continue;
                }

                entities++;
                var tripId = tu.Trip?.TripId;
                if (string.IsNullOrEmpty(tripId))
                {
                    Reject("trip_update_without_trip_id");
                    continue;
                }

                if (!schedule.TryGetTrip(tripId, out var tripIndex))
                {
                    skipped.Add(tripId);
                    continue;
                }

                if (!TryServiceDate(schedule, tripIndex, tu.Trip!, DateOnly.FromDateTime(local), poll, serviceDates, out var serviceDate))
                {
                    Reject("trip_not_running_that_day");
                    continue;
                }

                var key = new TripKey(tripIndex, serviceDate);
                matched.Add(key);
                var times = schedule.GetStopTimes(tripIndex);
                var trip = actuals.GetOrAdd(schedule, key);
                trip.Vehicle ??= tu.Vehicle?.Id;
                trip.KnownAt ??= NaNs(times.Length);
                var delay = double.NaN;
                foreach (var stu in tu.StopTimeUpdate)
                {
                    var k = stu.HasStopSequence ? schedule.FindStopSequence(tripIndex, (int)stu.StopSequence) : -1;
                    if (k < 0 && stu.HasStopId && schedule.TryGetStop(stu.StopId, out var stopIndex))
                    {
                        k = IndexOfStop(times, stopIndex);
                    }

                    if (k < 0)
                    {
                        Reject("stop_not_on_trip");
                        continue;
                    }

                    var observed = false;
                    if (stu.Arrival is { HasTime: true, Time: > 0 } a && a.Time <= poll)
                    {
                        trip.Arrival[k] = a.Time;
                        delay = a.HasDelay ? a.Delay : delay;
                        if (a.HasDelay)
                        {
                            delays[(key, k, false)] = a.Delay;
                        }

                        observed = true;
                    }

                    if (stu.Departure is { HasTime: true, Time: > 0 } d && d.Time <= poll)
                    {
                        trip.Departure[k] = d.Time;
                        delay = d.HasDelay ? d.Delay : delay;
                        if (d.HasDelay)
                        {
                            delays[(key, k, true)] = d.Delay;
                        }

                        observed = true;
                    }

                    if (!observed)
                    {
                        Reject("stop_time_update_without_observed_time");
                        continue;
                    }

                    actuals.Accept();
                    if (double.IsNaN(trip.KnownAt[k]))
                    {
                        trip.KnownAt[k] = poll;
                    }
                }

                replay.AddPoint(tu.Vehicle?.Id is { Length: > 0 } vehicle ? vehicle : tripId, key, 0, poll, delay);
            }
        }

        if (read == 0)
        {
            throw new InvalidDataException($"{archive}: no GTFS-Realtime snapshots (.pb, .json) in it");
        }

        if (entities == 0 && snapshots > 0)
        {
            throw new InvalidDataException($"{archive}: {snapshots:N0} snapshots but no TripUpdates in them (a VehiclePositions or Alerts feed?)");
        }

        var observedEvents = new List<ObservedStopEvent>();
        foreach (var trip in actuals.Trips.Values.OrderBy(t => t.Key.ServiceDate).ThenBy(t => t.Key.TripIndex))
        {
            for (var k = 0; k < trip.Arrival.Length; k++)
            {
                foreach (var departure in new[] { false, true })
                {
                    var time = departure ? trip.Departure[k] : trip.Arrival[k];
                    if (!double.IsNaN(time))
                    {
                        int? delay = delays.TryGetValue((trip.Key, k, departure), out var dl) ? dl : null;
                        observedEvents.Add(new ObservedStopEvent(trip.Key, k, departure, time, trip.Known(k, time), delay));
                    }
                }
            }
        }

        events = observedEvents.Count;
        actuals.FillAsTruthCsv(); // a stop seen only arriving departs then (dwell 0)
        return new TripUpdateDay(
            new ReplayDay(replay, actuals, skipped.Count), snapshots, entities, matched.Count, skipped.Count, events, rejections, observedEvents);
    }

    private static double[] NaNs(int n)
    {
        var a = new double[n];
        Array.Fill(a, double.NaN);
        return a;
    }

    private static int IndexOfStop(ReadOnlySpan<StopTime> times, int stopIndex)
    {
        for (var i = 0; i < times.Length; i++)
        {
            if (times[i].StopIndex == stopIndex)
            {
                return i;
            }
        }

        return -1;
    }

    private static bool TryServiceDate(
        Schedule schedule, int tripIndex, TripDescriptor descriptor, DateOnly localDate, double poll,
        Dictionary<(int, DateOnly), DateOnly?> cache, out DateOnly serviceDate)
    {
        if (descriptor.HasStartDate && DateOnly.TryParseExact(descriptor.StartDate, "yyyyMMdd", out serviceDate))
        {
            return true;
        }

        if (!cache.TryGetValue((tripIndex, localDate), out var found))
        {
            // The trip's date: of the poll's local date and the day before (trips past midnight), the one it runs on
            // whose scheduled start is nearest the poll.
            found = null;
            var best = double.MaxValue;
            var service = schedule.Trips[tripIndex].ServiceIndex;
            foreach (var date in new[] { localDate, localDate.AddDays(-1) })
            {
                if (!schedule.IsServiceActive(service, date))
                {
                    continue;
                }

                var start = (schedule.ToUtc(date, schedule.GetStartTime(tripIndex)) - DateTime.UnixEpoch).TotalSeconds;
                var distance = Math.Abs(start - poll);
                if (distance < best)
                {
                    best = distance;
                    found = date;
                }
            }

            cache[(tripIndex, localDate)] = found;
        }

        serviceDate = found.GetValueOrDefault();
        return found.HasValue;
    }
}
