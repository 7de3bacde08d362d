using System.Globalization;
using System.Threading.Channels;
using Fleet.Gtfs;
using Fleet.Ingest.Recording;
using Fleet.Tracking;
using Fleet.Tracking.Output;
using Fleet.Tracking.Replay;
using Fleet.Tracking.Schedule;

namespace Fleet.Dashboard.Cli;

/// <summary>
/// <c>fleet replay ... --gtfs GTFS --out-events FILE</c>: the replayed messages go through tracking (the deterministic
/// <see cref="TrackingEngine"/>) and every derived event is written as a JSON line.
/// </summary>
internal sealed class TrackingReplayTarget : IReplayTarget, IDisposable
{
    private readonly JsonLinesOutput _json;
    private readonly TrackingReplay _replay;
    private long _lastLines;
    private TimeSpan _lastElapsed;

    /// <summary>Events per tracking batch with the model: its online statistics learn between batches (see TrackingEngine).</summary>
    internal const int ModelBatchSize = 1024;

    /// <summary>Loads the schedule (and the model) and opens the events file.</summary>
    /// <param name="gtfsPath">The schedule, or null.</param>
    /// <param name="outEvents">Where derived events are written as JSON lines, or null.</param>
    /// <param name="predictions">Predict arrivals (delay carried forward unless <paramref name="modelPath"/>).</param>
    /// <param name="modelPath">An arrival model file, or null.</param>
    /// <param name="overlap">Overlap tracking batches with reading (same output; false for the comparison test).</param>
    /// <exception cref="InvalidDataException">The model file is not a valid arrival model.</exception>
    public TrackingReplayTarget(string? gtfsPath, string? outEvents, bool predictions, string? modelPath = null, bool overlap = true)
    {
        var schedule = gtfsPath is null ? null : GtfsLoader.Load(gtfsPath);
        ITripCatalog catalog = schedule is null ? new InMemoryTripCatalog() : new GtfsTripCatalog(schedule);
        Fleet.Tracking.Vehicles.IArrivalPredictor? predictor = predictions ? new Fleet.Tracking.Vehicles.DelayCarriedForwardPredictor() : null;
        var batch = 32_768;
        if (modelPath is not null && schedule is not null)
        {
            // The model learns from arrivals between batches; smaller batches keep "the vehicles ahead" fresh and
            // the output stays deterministic (batches are cut by count).
            predictor = new Fleet.Tracking.Vehicles.ModelArrivalPredictor(schedule, Fleet.Predict.ArrivalModel.Load(modelPath).Bind(schedule));
            batch = ModelBatchSize;
        }

        _json = new JsonLinesOutput(outEvents is null ? Stream.Null : new BufferedStream(File.Create(outEvents), 1 << 16));
        // Overlap: a batch's partitions run while the next batch is read and parsed; the output is the same bytes
        // (see TrackingEngine.OverlapBatches), and Status may read the counters while a batch runs.
        var engine = new TrackingEngine(catalog, new TrackingOptions(), _json, batchSize: batch, predictor: predictor) { OverlapBatches = overlap };
        _replay = new TrackingReplay(engine, schedule);
        Engine = engine;
    }

    /// <summary>The engine (aggregates for the summary).</summary>
    public TrackingEngine Engine { get; }

    /// <inheritdoc />
    public string Name => "tracking";

    /// <inheritdoc />
    public async Task ConsumeAsync(ChannelReader<RecordedMessage> messages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        while (await messages.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (messages.TryRead(out var m))
            {
                _replay.Process(m);
            }
        }

        _replay.Complete();
        _json.Flush();
    }

    /// <inheritdoc />
    public string Status(TimeSpan elapsed)
    {
        var f = _replay.Figures;
        var window = elapsed - _lastElapsed;
        var rate = window > TimeSpan.Zero ? (f.Lines - _lastLines) / window.TotalSeconds : 0;
        _lastLines = f.Lines;
        _lastElapsed = elapsed;
        var byType = _json.LinesByType;
        return string.Create(CultureInfo.InvariantCulture,
            $"lines {f.Lines:N0} ({rate:N0}/s), HFP events {f.HfpEvents:N0}, rejected {f.Rejected:N0}, GTFS-RT snapshots {f.GtfsRtSnapshots:N0}, " +
            $"vehicles {f.Tracking.Vehicles:N0}, arrivals {byType[0]:N0}, departures {byType[1]:N0}, alerts {byType[2]:N0}, predictions {byType[3]:N0}, " +
            $"late {f.Tracking.Late:N0}, duplicates {f.Tracking.Duplicates:N0}, unmatched journeys {f.Tracking.UnmatchedJourneys:N0}");
    }

    /// <inheritdoc />
    public void Dispose() => _json.Dispose();
}
