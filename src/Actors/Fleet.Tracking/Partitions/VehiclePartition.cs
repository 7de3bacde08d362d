using System.Text.Json;
using System.Text.Json.Serialization;
using Fleet.Ingest.Events;
using Fleet.Tracking.Output;
using Fleet.Tracking.Schedule;
using Fleet.Tracking.Vehicles;

namespace Fleet.Tracking.Partitions;

/// <summary>Tracking's counters of what it did not track as given: late events dropped, duplicates dropped, late
/// events tracked in the newest one's place, journeys the schedule did not know.</summary>
/// <param name="Late">Late events dropped.</param>
/// <param name="Duplicates">Exact duplicates dropped.</param>
/// <param name="Corrected">Late events within the tolerance, tracked in the newest one's place.</param>
/// <param name="Unmatched">Journeys the schedule did not know.</param>
public readonly record struct TrackingDrops(long Late, long Duplicates, long Corrected, long Unmatched)
{
    /// <summary>The sum of two.</summary>
    public static TrackingDrops operator +(TrackingDrops a, TrackingDrops b) =>
        new(a.Late + b.Late, a.Duplicates + b.Duplicates, a.Corrected + b.Corrected, a.Unmatched + b.Unmatched);

    /// <summary>The sum of two (CA2225).</summary>
    public static TrackingDrops Add(TrackingDrops a, TrackingDrops b) => a + b;
}

/// <summary>
/// A partition of the vehicle stream: the <see cref="VehicleTracker"/>s of every vehicle whose id hashes to it
/// (<see cref="PartitionOf"/>), fed in batches. The one tracking domain object: the Akka partition actor owns one live,
/// and the deterministic replay (<c>TrackingEngine</c>) composes N of them.
/// </summary>
/// <remarks>
/// <para>Exactly once across a restart: an event may carry its source's sequence number (a recording's line),
/// increasing per vehicle; an event at or below the last one its vehicle applied is skipped and counted
/// (<see cref="AlreadyApplied"/>), so a source that starts again from an earlier point applies nothing twice.</para>
/// <para>Not thread-safe: one owner at a time (an actor, or one partition thread of the replay).</para>
/// </remarks>
public sealed class VehiclePartition
{
    /// <summary>JSON settings of the trackers' state in <see cref="SaveStates"/> (fields, NaN).</summary>
    private static readonly JsonSerializerOptions s_json = new()
    {
        IncludeFields = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private readonly ITripCatalog _catalog;
    private readonly TrackingOptions _options;
    private readonly IArrivalPredictor? _predictor;

    /// <summary>Creates an empty partition.</summary>
    /// <param name="catalog">The schedule.</param>
    /// <param name="options">Tracking's thresholds.</param>
    /// <param name="predictor">Arrival predictor (none when null).</param>
    public VehiclePartition(ITripCatalog catalog, TrackingOptions options, IArrivalPredictor? predictor = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        _catalog = catalog;
        _options = options;
        _predictor = predictor;
    }

    /// <summary>The partition's trackers by vehicle id.</summary>
    public Dictionary<string, VehicleTracker> Trackers { get; } = new(StringComparer.Ordinal);

    /// <summary>Events skipped because their vehicle had applied their sequence number before.</summary>
    public long AlreadyApplied { get; private set; }

    /// <summary>Events applied.</summary>
    public long Applied { get; private set; }

    /// <summary>What the partition's trackers dropped or corrected so far (their counters summed).</summary>
    public TrackingDrops Drops()
    {
        long late = 0, duplicates = 0, corrected = 0, unmatched = 0;
        foreach (var t in Trackers.Values)
        {
            late += t.LateEvents;
            duplicates += t.DuplicateEvents;
            corrected += t.CorrectedEvents;
            unmatched += t.UnmatchedJourneys;
        }

        return new TrackingDrops(late, duplicates, corrected, unmatched);
    }

    /// <summary>The partition of a vehicle id among <paramref name="partitions"/> (FNV-1a; stable across processes and machines).</summary>
    public static int PartitionOf(string vehicleId, int partitions)
    {
        ArgumentNullException.ThrowIfNull(vehicleId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(partitions);
        var h = 2166136261u;
        foreach (var c in vehicleId)
        {
            h = (h ^ c) * 16777619u;
        }

        return (int)(h % (uint)partitions);
    }

    /// <summary>
    /// Tracks a batch: each event through its vehicle's tracker, in order, then the stream clock for every vehicle of
    /// the partition (releases held events, raises stale alerts), or the end of the stream when <paramref name="final"/>.
    /// </summary>
    /// <param name="events">The batch's events (vehicle events of this partition's vehicles).</param>
    /// <param name="sequences">Each event's source sequence number, or null / 0 when the source has none.</param>
    /// <param name="clock">The stream clock after the batch (ignored when <paramref name="final"/>).</param>
    /// <param name="output">Receives the derived events.</param>
    /// <param name="final">True at the end of the stream: every vehicle flushes and completes.</param>
    public void Track(IReadOnlyList<VehicleEvent> events, IReadOnlyList<long>? sequences, DateTime clock, ITrackingOutput output, bool final = false)
    {
        ArgumentNullException.ThrowIfNull(events);
        ArgumentNullException.ThrowIfNull(output);
        VehicleTracker? last = null;
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            if (last is null || !ReferenceEquals(last.VehicleId, e.VehicleId))
            {
                last = TrackerOf(e.VehicleId);
            }

            var sequence = sequences is null ? 0 : sequences[i];
            if (sequence > 0)
            {
                if (sequence <= last.LastSequence)
                {
                    AlreadyApplied++;
                    continue;
                }

                last.LastSequence = sequence;
            }

            Applied++;
            last.Accept(e, output);
        }

        foreach (var t in Trackers.Values)
        {
            if (final)
            {
                t.Complete(output);
            }
            else
            {
                t.AdvanceClock(clock, output);
            }
        }
    }

    /// <summary>
    /// The events of a batch its vehicles have not applied yet (by sequence number, as <see cref="Track"/> would skip
    /// them): what is worth journaling. Events without a sequence (0) are always fresh.
    /// </summary>
    /// <returns>The fresh events and their sequences (the same arrays when nothing is skipped), and how many were skipped.</returns>
    public (VehicleEvent[] Events, long[] Sequences, int Skipped) Fresh(VehicleEvent[] events, long[] sequences)
    {
        ArgumentNullException.ThrowIfNull(events);
        ArgumentNullException.ThrowIfNull(sequences);
        if (sequences.Length == 0)
        {
            return (events, sequences, 0);
        }

        Dictionary<string, long>? last = null;
        List<int>? keep = null;
        for (var i = 0; i < events.Length; i++)
        {
            var sequence = sequences[i];
            var id = events[i].VehicleId;
            if (sequence > 0)
            {
                last ??= new Dictionary<string, long>(StringComparer.Ordinal);
                if (!last.TryGetValue(id, out var applied))
                {
                    applied = Trackers.TryGetValue(id, out var t) ? t.LastSequence : 0;
                }

                if (sequence <= applied)
                {
                    keep ??= [.. Enumerable.Range(0, i)];
                    continue;
                }

                last[id] = sequence;
            }

            keep?.Add(i);
        }

        return keep is null ? (events, sequences, 0) : ([.. keep.Select(i => events[i])], [.. keep.Select(i => sequences[i])], events.Length - keep.Count);
    }

    /// <summary>The partition's state as bytes (JSON of each tracker's state): a copy, safe to store later.</summary>
    public byte[] SaveStates()
    {
        var states = new List<VehicleTrackerState>(Trackers.Count);
        foreach (var t in Trackers.Values)
        {
            states.Add(t.CaptureState());
        }

        return JsonSerializer.SerializeToUtf8Bytes(states, s_json);
    }

    /// <summary>Replaces the partition's vehicles with those of <paramref name="states"/> (from <see cref="SaveStates"/>).</summary>
    public void RestoreStates(ReadOnlySpan<byte> states)
    {
        Trackers.Clear();
        foreach (var s in JsonSerializer.Deserialize<List<VehicleTrackerState>>(states, s_json) ?? [])
        {
            Trackers[s.VehicleId] = new VehicleTracker(s, _catalog, _options, _predictor);
        }
    }

    private VehicleTracker TrackerOf(string vehicleId)
    {
        if (!Trackers.TryGetValue(vehicleId, out var tracker))
        {
            tracker = new VehicleTracker(vehicleId, _catalog, _options, _predictor);
            Trackers.Add(vehicleId, tracker);
        }

        return tracker;
    }
}
