namespace Fleet.Tracking.Output;

/// <summary>
/// Where tracking pushes what it derives: arrivals, departures, alerts, predictions, trip starts and ends and
/// (optionally) vehicle states. The seam the web host's live fan-out, the events file and tests plug into.
/// </summary>
/// <remarks>
/// Implementations must be thread-safe when used with the sharded runtime (entities on every shard emit), and
/// must not block for long: the live host should hand events to a bounded channel.
/// </remarks>
public interface ITrackingOutput
{
    /// <summary>Receives one derived event.</summary>
    public void Publish(DerivedEvent derived);
}

/// <summary>An <see cref="ITrackingOutput"/> that collects events in a list (not thread-safe; one per worker).</summary>
public sealed class ListOutput : ITrackingOutput
{
    /// <summary>The events received, in order.</summary>
    public List<DerivedEvent> Events { get; } = [];

    /// <inheritdoc />
    public void Publish(DerivedEvent derived) => Events.Add(derived);
}

/// <summary>Forwards to several outputs in order.</summary>
public sealed class FanOutOutput(params ITrackingOutput[] outputs) : ITrackingOutput
{
    /// <inheritdoc />
    public void Publish(DerivedEvent derived)
    {
        foreach (var o in outputs)
        {
            o.Publish(derived);
        }
    }
}
