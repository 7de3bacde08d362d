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
