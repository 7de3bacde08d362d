using System.Collections.Concurrent;

namespace Fleet.Dashboard.Live;

/// <summary>Why a prediction was withdrawn (pushed to subscribers with the withdrawal).</summary>
public static class WithdrawReason
{
    /// <summary>The vehicle's newer prediction round did not repeat it.</summary>
    public const string Replaced = "replaced";

    /// <summary>The vehicle was seen at or past the stop.</summary>
    public const string Passed = "passed";

    /// <summary>The vehicle ended the trip, or changed to another one.</summary>
    public const string TripEnded = "trip-ended";

    /// <summary>The vehicle has not reported for <see cref="LiveOptions.PredictionStaleAfter"/>.</summary>
    public const string Stale = "stale";

    /// <summary>The vehicle left the map (signed off, or silent for <see cref="LiveOptions.VehicleTtl"/>).</summary>
    public const string VehicleGone = "vehicle-gone";

    /// <summary>The replay sought or looped: event time started over.</summary>
    public const string Restarted = "restarted";

    /// <summary>Its predicted time is more than <see cref="LiveOptions.PredictionTtl"/> in the past.</summary>
    public const string Expired = "expired";
}

/// <summary>A prediction taken back: clients drop the row of this trip at this stop.</summary>
/// <param name="StopId">GTFS stop_id.</param>
/// <param name="TripId">Trip id.</param>
/// <param name="VehicleId">The vehicle that had predicted it, when known.</param>
/// <param name="RouteId">Route id, when known.</param>
/// <param name="StopSequence">GTFS stop_sequence; -1 when unknown.</param>
/// <param name="Reason">One of <see cref="WithdrawReason"/>'s values.</param>
/// <param name="Time">Event time of the withdrawal, UTC (shifted like the predictions).</param>
public sealed record PredictionWithdrawal(
    string StopId, string TripId, string? VehicleId, string? RouteId, int StopSequence, string Reason, DateTime Time);

/// <summary>The prediction rounds: which predictions each vehicle's latest round made, and their withdrawal.</summary>
/// <remarks>
/// <para>A vehicle's forecast is one round: every prediction it makes at one instant, then
/// <see cref="EndRound"/>. Whatever an earlier round predicted and the new one did not repeat is withdrawn, so
/// nothing of an older round survives a newer one. Predictions are also withdrawn when the vehicle is seen at or past
/// the stop (<see cref="WithdrawPassed"/>), ends or changes its trip (<see cref="WithdrawTrip"/>), goes quiet
/// (<see cref="LiveOptions.PredictionStaleAfter"/>), leaves the map, or when the replay seeks or loops
/// (<see cref="WithdrawAllPredictions"/>). A withdrawal is pushed to the clients that follow the stop, route or
/// vehicle as <see cref="LiveMethods.Withdrawn"/>.</para>
/// <para>Locks: see <see cref="LiveEvents"/> (<c>_roundGate</c> before <c>_changeGate</c>; a client's <c>Gate</c> is never
/// taken under <c>_roundGate</c>). Every change to the prediction store happens under <c>_roundGate</c>, so the store and
/// the per-vehicle rounds always agree (<see cref="CheckRounds"/>); the push lanes read the store without it, the
/// queries that list it (<see cref="PredictionsAt"/>, <see cref="AllPredictions"/>) take it briefly.</para>
/// </remarks>
public sealed partial class LiveEvents
{
    // Vehicle -> its round. Guarded by _roundGate.
    private readonly Dictionary<string, VehicleRound> _rounds = new(StringComparer.Ordinal);
    private readonly Lock _roundGate = new();

    // Withdrawals not yet pushed (kept for WithdrawalRetention of wall time, so a client's pending key still finds it).
    private readonly ConcurrentDictionary<PredictionKey, WithdrawnEntry> _withdrawn = new();

    // Trip -> the highest stop_sequence a vehicle was seen at, and when (event ticks), so that a stop board does not
    // list by schedule a trip whose vehicle has already passed. One entry per trip; forgotten after PassedRetention.
    private readonly ConcurrentDictionary<string, PassedMark> _passed = new(StringComparer.Ordinal);

    private static readonly TimeSpan WithdrawalRetention = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan PassedRetention = TimeSpan.FromHours(3);

    /// <summary>Each route's arrivals by 5 minutes: delay and headway along the day (the route charts).</summary>
    public RouteHistory History { get; } = new();

    /// <summary>Predictions withdrawn since start, all reasons.</summary>
    public long WithdrawnCount => Interlocked.Read(ref _withdrawnCount);

    private long _withdrawnCount;

    /// <summary>
    /// Ends a vehicle's prediction round made at <paramref name="roundTime"/> (the <see cref="ArrivalPrediction.Updated"/>
    /// of its predictions): every prediction of the vehicle from an earlier round that this one did not repeat is
    /// withdrawn. An empty round withdraws all of them.
    /// </summary>
    /// <param name="vehicleId">The vehicle.</param>
    /// <param name="tripId">The trip it is on (its predictions of the block's next trip follow this one's).</param>
    /// <param name="roundTime">The round's time, UTC (shifted like the predictions).</param>
    public void EndRound(string vehicleId, string? tripId, DateTime roundTime)
    {
        ArgumentNullException.ThrowIfNull(vehicleId);
        bool signal;
        lock (_roundGate)
        {
            signal = EndRoundLocked(vehicleId, tripId, roundTime);
        }

        if (signal)
        {
            Signal();
        }
    }

    private bool EndRoundLocked(string vehicleId, string? tripId, DateTime roundTime)
    {
        var round = RoundOf(vehicleId);
        round.TripId = tripId;
        round.Seen(roundTime.Ticks);
        return WithdrawWhere(round, roundTime, WithdrawReason.Replaced, (_, stamp, _) => stamp < roundTime.Ticks);
    }

    /// <summary>
    /// The vehicle was seen at stop <paramref name="stopId"/> (sequence <paramref name="stopSequence"/>) of
    /// <paramref name="tripId"/>: that prediction and those of earlier stops of the trip are withdrawn, and stop boards
    /// no longer list the trip there by schedule.
    /// </summary>
    public void WithdrawPassed(string? vehicleId, string tripId, string stopId, int stopSequence, DateTime time)
    {
        ArgumentNullException.ThrowIfNull(tripId);
        ArgumentNullException.ThrowIfNull(stopId);
        AdvanceEventTime(time);
        _passed.AddOrUpdate(tripId, static (_, m) => m, static (_, old, m) => m.Sequence >= old.Sequence ? m : old with { Ticks = m.Ticks },
            new PassedMark(stopSequence, time.Ticks));
        var signal = false;
        lock (_roundGate)
        {
            var key = new PredictionKey(stopId, tripId);
            if (_predictionsByStop.TryGetValue(stopId, out var byTrip) && byTrip.TryGetValue(tripId, out var atStop))
            {
                signal |= WithdrawLocked(key, atStop, WithdrawReason.Passed, time);
            }

            if (vehicleId is not null)
            {
                var round = RoundOf(vehicleId);
                round.Seen(time.Ticks);
                round.Passed(tripId, stopSequence);
                signal |= WithdrawWhere(round, time, WithdrawReason.Passed,
                    (k, _, p) => k.TripId == tripId && p.StopSequence >= 0 && p.StopSequence <= stopSequence);
            }

        }

        if (signal)
        {
            Signal();
        }
    }

    /// <summary>
    /// The vehicle ended <paramref name="tripId"/> at <paramref name="time"/>: its predictions of that trip are withdrawn;
    /// with <paramref name="leftBlock"/> (a journey change, a dead run, a sign-off: anything but completing the trip)
    /// also every prediction of an earlier round, the block's next trip included.
    /// </summary>
    public void WithdrawTrip(string vehicleId, string tripId, DateTime time, bool leftBlock)
    {
        ArgumentNullException.ThrowIfNull(vehicleId);
        ArgumentNullException.ThrowIfNull(tripId);
        var signal = false;
        lock (_roundGate)
        {
            if (_rounds.TryGetValue(vehicleId, out var round))
            {
                round.Seen(time.Ticks);
                if (round.PassedTrip == tripId)
                {
                    // Done with the trip: a later run of the same trip_id (a frequency-based trip) starts afresh.
                    round.Passed(null, -1);
                }

                signal = WithdrawWhere(round, time, WithdrawReason.TripEnded,
                    (k, stamp, _) => k.TripId == tripId || (leftBlock && stamp < time.Ticks));
            }

        }

        if (signal)
        {
            Signal();
        }
    }

    /// <summary>Withdraws every prediction of a vehicle (it went quiet, or left the map).</summary>
    public void WithdrawVehicle(string vehicleId, string reason, DateTime time)
    {
        ArgumentNullException.ThrowIfNull(vehicleId);
        var signal = false;
        lock (_roundGate)
        {
            if (_rounds.Remove(vehicleId, out var round))
            {
                signal = WithdrawWhere(round, time, reason, static (_, _, _) => true);
            }

        }

        if (signal)
        {
            Signal();
        }
    }

    /// <summary>
    /// Withdraws every prediction (the replay sought or looped: event time starts over, and nothing predicted before
    /// it may remain). Clients following them are told.
    /// </summary>
    public void WithdrawAllPredictions(string reason)
    {
        var time = LatestEventTime ?? _time.GetUtcNow().UtcDateTime;
        var signal = false;
        lock (_roundGate)
        {
            foreach (var (stopId, byTrip) in _predictionsByStop)
            {
                foreach (var (tripId, p) in byTrip)
                {
                    signal |= WithdrawLocked(new PredictionKey(stopId, tripId), p, reason, time);
                }
            }

            _rounds.Clear();
            _passed.Clear();
            History.Clear();
            // Event time starts over too (a replay sought back, or looped without shifting to now).
            Interlocked.Exchange(ref _latestEventTicks, 0);
        }

        if (signal)
        {
            Signal();
        }
    }

    /// <summary>The GTFS trip tracking has the vehicle on (that of its latest prediction round), or null.</summary>
    public string? TrackedTripOf(string vehicleId)
    {
        ArgumentNullException.ThrowIfNull(vehicleId);
        lock (_roundGate)
        {
            return _rounds.TryGetValue(vehicleId, out var round) ? round.TripId : null;
        }
    }

    /// <summary>True when the vehicle of <paramref name="tripId"/> was seen at or past stop sequence
    /// <paramref name="stopSequence"/> (a stop board then does not list the trip there by schedule).</summary>
    public bool HasPassed(string tripId, int stopSequence) =>
        stopSequence >= 0 && _passed.TryGetValue(tripId, out var m) && m.Sequence >= stopSequence;

    /// <summary>
    /// What one vehicle is predicted to reach: the stops of the trip it is on in stop_sequence order, then those of its
    /// block's next trip (<see cref="ArrivalPrediction.NextTrip"/>), all from its latest round, so times never go back.
    /// </summary>
    public IReadOnlyList<ArrivalPrediction> PredictionsOfVehicle(string vehicleId)
    {
        ArgumentNullException.ThrowIfNull(vehicleId);
        var result = new List<ArrivalPrediction>();
        lock (_roundGate)
        {
            if (!_rounds.TryGetValue(vehicleId, out var round))
            {
                return result;
            }

            foreach (var key in round.Keys.Keys)
            {
                if (_predictionsByStop.TryGetValue(key.StopId, out var byTrip) && byTrip.TryGetValue(key.TripId, out var p))
                {
                    result.Add(p);
                }
            }
        }

        result.Sort(static (a, b) =>
            a.NextTrip != b.NextTrip ? a.NextTrip.CompareTo(b.NextTrip)
            : a.StopSequence != b.StopSequence ? a.StopSequence.CompareTo(b.StopSequence)
            : a.Predicted.CompareTo(b.Predicted));
        return result;
    }

    // Records a published prediction in its vehicle's round, made at stamp (under _roundGate). A key another vehicle
    // held moves to this one (the last to predict a trip at a stop owns the row).
    private void Track(ArrivalPrediction p, ArrivalPrediction? previous, long stamp)
    {
        if (previous?.VehicleId is { } was && was != p.VehicleId && _rounds.TryGetValue(was, out var old))
        {
            old.Keys.Remove(new PredictionKey(p.StopId, p.TripId));
        }

        if (p.VehicleId is { } vehicleId)
        {
            var round = RoundOf(vehicleId);
            round.Keys[new PredictionKey(p.StopId, p.TripId)] = stamp;
            round.Seen(stamp);
        }
    }

    private VehicleRound RoundOf(string vehicleId)
    {
        if (!_rounds.TryGetValue(vehicleId, out var round))
        {
            round = new VehicleRound();
            _rounds[vehicleId] = round;
        }

        return round;
    }

    // Withdraws the predictions of a round that match (under _roundGate). Returns true when a client must be told.
    private bool WithdrawWhere(VehicleRound round, DateTime time, string reason, Func<PredictionKey, long, ArrivalPrediction, bool> match)
    {
        List<PredictionKey>? gone = null;
        foreach (var (key, stamp) in round.Keys)
        {
            if (_predictionsByStop.TryGetValue(key.StopId, out var byTrip) && byTrip.TryGetValue(key.TripId, out var p))
            {
                if (match(key, stamp, p))
                {
                    (gone ??= []).Add(key);
                }
            }
            else
            {
                // Removed by other means (expired): forget it here too.
                (gone ??= []).Add(key);
            }
        }

        var signal = false;
        if (gone is not null)
        {
            foreach (var key in gone)
            {
                if (_predictionsByStop.TryGetValue(key.StopId, out var byTrip) && byTrip.TryGetValue(key.TripId, out var p))
                {
                    signal |= WithdrawLocked(key, p, reason, time);
                }

                round.Keys.Remove(key);
            }
        }

        return signal;
    }

    // Removes one prediction from the store and its round, remembers the withdrawal for the clients that follow it
    // (under _roundGate). Returns true when a client must be told.
    private bool WithdrawLocked(PredictionKey key, ArrivalPrediction p, string reason, DateTime time)
    {
        if (!_predictionsByStop.TryGetValue(key.StopId, out var byTrip) || !byTrip.TryRemove(key.TripId, out _))
        {
            return false;
        }

        Interlocked.Decrement(ref _predictionCount);
        Interlocked.Increment(ref _withdrawnCount);
        if (p.VehicleId is { } vehicleId && _rounds.TryGetValue(vehicleId, out var round))
        {
            round.Keys.Remove(key);
        }

        if (!_index.WantsPrediction(p))
        {
            return false;
        }

        _withdrawn[key] = new WithdrawnEntry(
            new PredictionWithdrawal(p.StopId, p.TripId, p.VehicleId, p.RouteId, p.StopSequence, reason, time), _time.GetTimestamp());
        lock (_changeGate)
        {
            _changedPredictions.Add(key);
        }

        return true;
    }

    // Once a second (the vehicle lane): withdraws the predictions of vehicles silent for PredictionStaleAfter of event
    // time, forgets old withdrawals and passed marks.
    private void ExpireRounds(DateTime latest, long now)
    {
        var staleBefore = (latest - _options.PredictionStaleAfter).Ticks;
        var signal = false;
        lock (_roundGate)
        {
            List<string>? quiet = null;
            foreach (var (vehicleId, round) in _rounds)
            {
                var seen = round.LastSeenTicks;
                if (_vehicles.TryGetValue(vehicleId, out var v) && v.State.Updated.Ticks > seen)
                {
                    seen = v.State.Updated.Ticks;
                }

                if (seen < staleBefore)
                {
                    (quiet ??= []).Add(vehicleId);
                }
            }

            if (quiet is not null)
            {
                foreach (var vehicleId in quiet)
                {
                    _rounds.Remove(vehicleId, out var round);
                    signal |= WithdrawWhere(round!, latest, WithdrawReason.Stale, static (_, _, _) => true);
                }
            }

        }

        if (signal)
        {
            Signal();
        }

        foreach (var (key, entry) in _withdrawn)
        {
            if (_time.GetElapsedTime(entry.At, now) > WithdrawalRetention)
            {
                _withdrawn.TryRemove(key, out _);
            }
        }

        var passedBefore = (latest - PassedRetention).Ticks;
        foreach (var (tripId, mark) in _passed)
        {
            if (mark.Ticks < passedBefore)
            {
                _passed.TryRemove(tripId, out _);
            }
        }
    }

    /// <summary>
    /// Checks that the store and the rounds agree: every prediction with a vehicle is in that vehicle's round, and every
    /// key of a round is a prediction of that vehicle in the store. Returns what disagrees (empty when consistent); walks
    /// everything under the round lock, so for tests and diagnostics, not for a hot path.
    /// </summary>
    public IReadOnlyList<string> CheckRounds()
    {
        var findings = new List<string>();
        lock (_roundGate)
        {
            foreach (var (stopId, byTrip) in _predictionsByStop)
            {
                foreach (var (tripId, p) in byTrip)
                {
                    if (p.VehicleId is not null && !(_rounds.TryGetValue(p.VehicleId, out var r) && r.Keys.ContainsKey(new PredictionKey(stopId, tripId))))
                    {
                        findings.Add($"prediction {stopId}/{tripId} of {p.VehicleId} is in no round");
                    }
                }
            }

            foreach (var (vehicleId, round) in _rounds)
            {
                foreach (var key in round.Keys.Keys)
                {
                    if (!(_predictionsByStop.TryGetValue(key.StopId, out var byTrip) && byTrip.TryGetValue(key.TripId, out var p) && p.VehicleId == vehicleId))
                    {
                        findings.Add($"round of {vehicleId} holds {key}, which is not its prediction");
                    }
                }
            }
        }

        return findings;
    }

    private readonly record struct WithdrawnEntry(PredictionWithdrawal Withdrawal, long At);

    private readonly record struct PassedMark(int Sequence, long Ticks);

    /// <summary>One vehicle's latest round: the predictions it holds, each with the time of the round that made it.</summary>
    private sealed class VehicleRound
    {
        public Dictionary<PredictionKey, long> Keys { get; } = [];

        public string? TripId { get; set; }

        /// <summary>The trip of the vehicle's latest arrival, and the highest stop_sequence it arrived at on it.</summary>
        public string? PassedTrip { get; private set; }

        public int PassedSequence { get; private set; } = -1;

        /// <summary>True when the vehicle has been seen at or past this stop of this trip.</summary>
        public bool HasPassed(string tripId, int stopSequence) =>
            stopSequence >= 0 && PassedSequence >= stopSequence && string.Equals(PassedTrip, tripId, StringComparison.Ordinal);

        public void Passed(string? tripId, int stopSequence)
        {
            if (tripId is null || !string.Equals(PassedTrip, tripId, StringComparison.Ordinal))
            {
                PassedTrip = tripId;
                PassedSequence = stopSequence;
            }
            else if (stopSequence > PassedSequence)
            {
                PassedSequence = stopSequence;
            }
        }

        public long LastSeenTicks { get; private set; }

        public void Seen(long ticks)
        {
            if (ticks > LastSeenTicks)
            {
                LastSeenTicks = ticks;
            }
        }
    }
}
