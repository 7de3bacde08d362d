using Fleet.Dashboard.Live;
using Fleet.Dashboard.Sources;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
using Fleet.Tracking.Output;

namespace Fleet.Dashboard.Cli;

/// <summary>
/// For the benchmarks: gives each prediction, as its time (published as <c>updated</c>), the wall-clock moment its
/// input entered Fleet (<see cref="DerivedEvent.IngestTimestamp"/>), so a client's receive time minus <c>updated</c>
/// is the latency from ingest to the client. A prediction without a stamp gets the moment it left tracking, and is
/// counted.
/// </summary>
internal sealed class IngestStampingOutput(ITrackingOutput inner, TimeProvider time) : ITrackingOutput
{
    private long _unstamped;

    /// <summary>Predictions that had no ingest stamp (stamped when they left tracking instead).</summary>
    public long Unstamped => Interlocked.Read(ref _unstamped);

    /// <summary>Event time of every prediction passed on, when set (the tracking hold is measured against it).</summary>
    public Action<DateTime>? OnPrediction { get; init; }

    public void Publish(DerivedEvent derived)
    {
        ArgumentNullException.ThrowIfNull(derived);
        if (derived.Type != DerivedEventType.Prediction)
        {
            inner.Publish(derived);
            return;
        }

        OnPrediction?.Invoke(derived.Time);
        var now = time.GetUtcNow().UtcDateTime;
        if (derived.IngestTimestamp == 0)
        {
            Interlocked.Increment(ref _unstamped);
            inner.Publish(derived with { Time = now });
            return;
        }

        inner.Publish(derived with { Time = now - time.GetElapsedTime(derived.IngestTimestamp) });
    }
}

/// <summary>How the latency benchmarks feed a recording line in, as a live source hands one over.</summary>
internal static class BenchIngest
{
    /// <summary>
    /// Stamps the line with the wall clock when read, parses it, queues it for tracking (the stamp travels with it)
    /// and shows its vehicle with <c>updated</c> = the wall clock now. True when the line was an event.
    /// </summary>
    public static bool Line(RecordingLine line, HfpStream hfp, LivePipeline pipeline, LiveEvents live, TimeProvider time, SourceStatus? status = null)
    {
        var stamp = time.GetTimestamp();
        if (line.Kind != RecordKind.Message || hfp.Process(line, out var ev) != HfpOutcome.Event)
        {
            return false;
        }

        ev.IngestTimestamp = stamp;
        pipeline.Track(ev);
        var now = time.GetUtcNow().UtcDateTime;
        status?.CountEvent(now);
        live.Metrics.CountEvent(now);
        if (VehicleState.FromEvent(ev) is { } state)
        {
            live.PublishVehicle(state with { Updated = now });
        }

        return true;
    }
}
