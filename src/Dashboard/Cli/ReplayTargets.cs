using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Cli;

/// <summary>Where <c>fleet replay</c> sends the messages it reads: the in-process pipeline, or a broker (<c>--to</c>).</summary>
/// <remarks>
/// A target consumes the replayer's bounded channel; consuming slowly is how backpressure reaches the replay.
/// <see cref="Status"/> is called from the progress reporter on another thread while <see cref="ConsumeAsync"/> runs.
/// </remarks>
internal interface IReplayTarget
{
    /// <summary>A short name for logs ("pipeline", "mqtt://host:1883").</summary>
    public string Name { get; }

    /// <summary>Consumes messages until the channel completes (or cancellation).</summary>
    public Task ConsumeAsync(ChannelReader<RecordedMessage> messages, CancellationToken cancellationToken);

    /// <summary>A one-line status for progress output.</summary>
    public string Status(TimeSpan elapsed);
}

/// <summary>
/// The in-process pipeline as it stands: parses every HFP message and keeps counts (events per type, vehicles,
/// rejections per reason); GTFS-RT snapshots are counted. Later stages (actors) hang off <see cref="Events"/>.
/// </summary>
internal sealed class PipelineReplayTarget(ILoggerFactory logging) : IReplayTarget
{
    private readonly HfpStream _stream = new(new HfpParser(logging.CreateLogger<HfpParser>()));
    private long _lastParsed;
    private TimeSpan _lastElapsed;

    /// <inheritdoc />
    public string Name => "pipeline";

    /// <summary>The figures so far.</summary>
    public HfpStream Stream => _stream;

    /// <summary>Called with every parsed event, on the consuming thread (none by default).</summary>
    public Action<Fleet.Ingest.Events.VehicleEvent>? Events { get; init; }

    /// <inheritdoc />
    public async Task ConsumeAsync(ChannelReader<RecordedMessage> messages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        while (await messages.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (messages.TryRead(out var m))
            {
                if (_stream.Process(m, out var ev) == HfpOutcome.Event)
                {
                    Events?.Invoke(ev);
                }
            }
        }
    }

    /// <inheritdoc />
    public string Status(TimeSpan elapsed)
    {
        var parsed = _stream.Parsed;
        var window = elapsed - _lastElapsed;
        var rate = window > TimeSpan.Zero ? (parsed - _lastParsed) / window.TotalSeconds : 0;
        _lastParsed = parsed;
        _lastElapsed = elapsed;

        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"events {parsed:N0} ({rate:N0}/s), vehicles {_stream.Vehicles:N0}");
        var types = HfpEventTypes.All.Where(t => _stream.EventsOfType(t) > 0).Select(t => $"{HfpEventTypes.Name(t)} {_stream.EventsOfType(t):N0}");
        sb.Append(" [").AppendJoin(", ", types).Append(']');
        sb.Append(CultureInfo.InvariantCulture, $", rejected {_stream.Rejections.Total:N0}");
        if (_stream.Rejections.Total > 0)
        {
            sb.Append(" (").AppendJoin(", ", _stream.Rejections.NonZero().Select(r => $"{r.Key} {r.Value:N0}")).Append(')');
        }

        if (_stream.GtfsRtSnapshots > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $", GTFS-RT snapshots {_stream.GtfsRtSnapshots:N0}");
        }

        return sb.ToString();
    }
}
