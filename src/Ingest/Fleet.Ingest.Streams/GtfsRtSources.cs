using Akka;
using Akka.Streams.Dsl;
using Akka.Util;
using Fleet.Gtfs.Realtime;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TransitRealtime;

namespace Fleet.Ingest.Streams;

/// <summary>A decoded GTFS-Realtime snapshot and when it arrived (UTC).</summary>
/// <param name="Feed">The feed message.</param>
/// <param name="ReceiveTime">When it was received.</param>
public sealed record GtfsRtFeed(FeedMessage Feed, DateTime ReceiveTime);

/// <summary>GTFS-Realtime polling as an Akka.Streams source, and decoding as a flow.</summary>
public static partial class GtfsRtSources
{
    /// <summary>
    /// Each new snapshot of a feed: <paramref name="poller"/> polls (conditional requests; its backoff after failures,
    /// a server's Retry-After honoured) at its interval while downstream wants more; not-modified answers and failed
    /// polls emit nothing (failures are reported to <paramref name="health"/>). Completes when
    /// <paramref name="stopping"/> is cancelled.
    /// </summary>
    /// <param name="name">The source's name, for its log lines.</param>
    /// <param name="poller">The feed's poller.</param>
    /// <param name="health">Where states and failures are reported.</param>
    /// <param name="time">The clock the waits run on.</param>
    /// <param name="stopping">Stops the source (the host's shutdown).</param>
    /// <param name="waitForTurn">Awaited before each poll, when given: a cluster node polls only while it holds the
    /// feed's singleton (the others wait here, in standby).</param>
    public static Source<GtfsRtSnapshot, NotUsed> Poll(string name, GtfsRtPoller poller, ISourceHealth health, TimeProvider time, CancellationToken stopping,
        Func<CancellationToken, Task>? waitForTurn = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(poller);
        ArgumentNullException.ThrowIfNull(health);
        ArgumentNullException.ThrowIfNull(time);
        return Source.UnfoldAsync<TimeSpan, GtfsRtSnapshot>(TimeSpan.Zero, async wait =>
        {
            try
            {
                while (true)
                {
                    if (wait > TimeSpan.Zero)
                    {
                        await Task.Delay(wait, time, stopping).ConfigureAwait(false);
                    }

                    if (waitForTurn is not null)
                    {
                        await waitForTurn(stopping).ConfigureAwait(false);
                    }

                    var result = await poller.PollOnceAsync(stopping).ConfigureAwait(false);
                    wait = poller.NextDelay(result);
                    switch (result.Outcome)
                    {
                        case PollOutcome.Snapshot when result.Snapshot is { } snapshot:
                            health.ReportState("connected", connected: true);
                            return Option<(TimeSpan, GtfsRtSnapshot)>.Create((wait, snapshot));
                        case PollOutcome.NotModified:
                            health.ReportState("connected", connected: true);
                            break;
                        default:
                            // The poller logs the failure (with its count in a row).
                            health.ReportState("reconnecting", connected: false);
                            health.ReportFailure(result.Error ?? "unknown");
                            break;
                    }
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return Option<(TimeSpan, GtfsRtSnapshot)>.None;
            }
        });
    }

    /// <summary>
    /// Snapshots to decoded feeds (protobuf, or the JSON form with its agency quirks); a snapshot that does not decode
    /// is reported as rejected (<c>GtfsRtUndecodable</c>) and goes no further: the next one still does.
    /// </summary>
    /// <param name="name">The source's name, for its log lines.</param>
    /// <param name="health">Where rejections are counted.</param>
    /// <param name="logger">Where undecodable snapshots are logged.</param>
    public static Flow<GtfsRtSnapshot, GtfsRtFeed, NotUsed> Decode(string name, ISourceHealth health, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(health);
        logger ??= NullLogger.Instance;
        return Flow.Create<GtfsRtSnapshot>()
            .Select(snapshot =>
            {
                try
                {
                    var feed = new GtfsRtFeed(GtfsRtDecoder.DecodeAny(snapshot.Payload.Span), snapshot.ReceiveTime);
                    health.ReportRecovered();
                    return (Decoded: true, Feed: feed);
                }
                catch (GtfsRtFormatException ex)
                {
                    health.ReportRejected("GtfsRtUndecodable", ex.Message);
                    LogUndecodable(logger, name, ex.Message);
                    return (Decoded: false, Feed: (GtfsRtFeed?)null);
                }
            })
            .Where(f => f.Decoded)
            .Select(f => f.Feed!);
    }

    [LoggerMessage(EventId = 5041, Level = LogLevel.Warning, Message = "GTFS-RT source {Name}: snapshot does not decode: {Reason}")]
    private static partial void LogUndecodable(ILogger logger, string name, string reason);
}
