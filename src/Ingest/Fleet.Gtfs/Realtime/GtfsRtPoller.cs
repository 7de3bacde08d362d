using System.Net;
using System.Net.Http.Headers;
using Fleet.Ingest.Recording;
using Microsoft.Extensions.Logging;

namespace Fleet.Gtfs.Realtime;

/// <summary>Settings of a <see cref="GtfsRtPoller"/>.</summary>
public sealed class GtfsRtPollerOptions
{
    /// <summary>The feed URL (required).</summary>
    public Uri? Url { get; set; }

    /// <summary>Feed name used in the recording topic <c>gtfs-rt/&lt;feed&gt;</c> (no whitespace).</summary>
    public string FeedName { get; set; } = "feed";

    /// <summary>Time between polls when all is well (default 15 s).</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Timeout of one request, headers and body (default 10 s).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Upper bound of the wait after repeated failures (default 5 min).</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Largest accepted body; a larger one is a failure (default 64 MiB).</summary>
    public int MaxBytes { get; set; } = 64 << 20;
}

/// <summary>One fetched GTFS-Realtime snapshot: raw bytes as served, and when they arrived.</summary>
/// <param name="FeedName">The poller's feed name.</param>
/// <param name="ReceiveTime">When the body was read, UTC, from the poller's <see cref="TimeProvider"/>.</param>
/// <param name="Payload">The body (protobuf, or JSON for feeds that serve it).</param>
/// <param name="ETag">The response ETag, if any.</param>
/// <param name="LastModified">The response Last-Modified, if any.</param>
public sealed record GtfsRtSnapshot(string FeedName, DateTime ReceiveTime, ReadOnlyMemory<byte> Payload, string? ETag, DateTimeOffset? LastModified);

/// <summary>What one poll did.</summary>
public enum PollOutcome
{
    /// <summary>A new snapshot arrived (HTTP 200).</summary>
    Snapshot,
    /// <summary>The server said nothing changed (HTTP 304).</summary>
    NotModified,
    /// <summary>The request failed: network error, timeout, or a status other than 200/304.</summary>
    Failed,
}

/// <summary>The result of <see cref="GtfsRtPoller.PollOnceAsync"/>.</summary>
/// <param name="Outcome">What happened.</param>
/// <param name="Snapshot">The snapshot when <see cref="Outcome"/> is <see cref="PollOutcome.Snapshot"/>.</param>
/// <param name="Error">Why it failed, when it did.</param>
/// <param name="RetryAfter">A server's Retry-After (on 429/503), honoured by the backoff.</param>
public readonly record struct PollResult(PollOutcome Outcome, GtfsRtSnapshot? Snapshot, string? Error, TimeSpan? RetryAfter = null);

/// <summary>
/// Polls a GTFS-Realtime URL: conditional requests (If-None-Match / If-Modified-Since), a timeout per request,
/// and exponential backoff on failure (the wait doubles per consecutive failure up to
/// <see cref="GtfsRtPollerOptions.MaxBackoff"/>, and is at least a server's Retry-After).
/// </summary>
/// <remarks>
/// <para>Time comes from the injected <see cref="TimeProvider"/> (receive times, delays and timeouts), so tests
/// drive it with a fake clock. The body is handed over raw; decode it with <see cref="GtfsRtDecoder"/> and record
/// it with <see cref="RecordSnapshot(RecordingWriter, GtfsRtSnapshot)"/>.</para>
/// <para>One poller per feed; <see cref="RunAsync"/> must not run twice at once. Counters may be read from any
/// thread.</para>
/// <code>
///   ┌────────┐ 200 ─► snapshot ─► wait Interval ─┐
///   │  poll  │ 304 ─────────────► wait Interval ─┤
///   └────────┘ error/timeout ───► wait Interval × 2^(failures-1), ≤ MaxBackoff, ≥ Retry-After
///        ▲                                        │
///        └────────────────────────────────────────┘
/// </code>
/// </remarks>
public sealed partial class GtfsRtPoller
{
    private readonly HttpClient _http;
    private readonly GtfsRtPollerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private string? _etag;
    private DateTimeOffset? _lastModified;
    private long _snapshots;
    private long _notModified;
    private long _failures;

    /// <summary>Creates a poller. The <paramref name="http"/> client is not disposed by the poller.</summary>
    public GtfsRtPoller(HttpClient http, GtfsRtPollerOptions options, TimeProvider timeProvider, ILogger<GtfsRtPoller> logger)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(options.Url, "options.Url");
        ArgumentException.ThrowIfNullOrWhiteSpace(options.FeedName, "options.FeedName");
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.Interval, TimeSpan.Zero, "options.Interval");
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.Timeout, TimeSpan.Zero, "options.Timeout");
        _http = http;
        _options = options;
        _time = timeProvider;
        _logger = logger;
    }

    /// <summary>Snapshots received.</summary>
    public long Snapshots => Interlocked.Read(ref _snapshots);

    /// <summary>Polls answered 304 Not Modified.</summary>
    public long NotModifiedCount => Interlocked.Read(ref _notModified);

    /// <summary>Failed polls.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Failures since the last success (drives the backoff).</summary>
    public int ConsecutiveFailures { get; private set; }

    /// <summary>Writes a snapshot to a recording as a <c>gtfs-rt/&lt;feed&gt;</c> line with a base64 payload.</summary>
    public static void RecordSnapshot(RecordingWriter writer, GtfsRtSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(snapshot);
        writer.WriteGtfsRt(snapshot.ReceiveTime, snapshot.FeedName, snapshot.Payload.Span);
    }

    /// <summary>Makes one conditional request. Never throws except when <paramref name="cancellationToken"/> is cancelled.</summary>
    public async Task<PollResult> PollOnceAsync(CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(_options.Timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        PollResult result;
        try
        {
            result = await SendAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            result = new PollResult(PollOutcome.Failed, null, $"timed out after {_options.Timeout.TotalSeconds:0.###} s");
        }
        catch (HttpRequestException ex)
        {
            result = new PollResult(PollOutcome.Failed, null, ex.Message);
        }
        catch (IOException ex)
        {
            result = new PollResult(PollOutcome.Failed, null, ex.Message);
        }

        switch (result.Outcome)
        {
            case PollOutcome.Snapshot:
                Interlocked.Increment(ref _snapshots);
                ConsecutiveFailures = 0;
                break;
            case PollOutcome.NotModified:
                Interlocked.Increment(ref _notModified);
                ConsecutiveFailures = 0;
                break;
            default:
                Interlocked.Increment(ref _failures);
                ConsecutiveFailures++;
                LogPollFailed(_logger, _options.FeedName, _options.Url!, result.Error ?? "unknown", ConsecutiveFailures);
                break;
        }

        return result;
    }

    /// <summary>How long to wait after <paramref name="result"/>: the interval, or the backoff after a failure.</summary>
    public TimeSpan NextDelay(PollResult result)
    {
        if (result.Outcome != PollOutcome.Failed || ConsecutiveFailures == 0)
        {
            return _options.Interval;
        }

        var factor = Math.Pow(2, Math.Min(ConsecutiveFailures - 1, 30));
        var backoff = TimeSpan.FromTicks((long)Math.Min(_options.Interval.Ticks * factor, _options.MaxBackoff.Ticks));
        if (backoff < _options.Interval)
        {
            backoff = _options.Interval;
        }

        return result.RetryAfter is { } ra && ra > backoff ? ra : backoff;
    }

    /// <summary>
    /// Polls until cancelled, handing each snapshot to <paramref name="onSnapshot"/>. A failing poll or a throwing
    /// handler is logged and counted; the loop goes on (with backoff after a failed poll).
    /// </summary>
    public async Task RunAsync(Func<GtfsRtSnapshot, CancellationToken, ValueTask> onSnapshot, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(onSnapshot);
        LogPollerStarted(_logger, _options.FeedName, _options.Url!, _options.Interval.TotalSeconds);
        while (!cancellationToken.IsCancellationRequested)
        {
            PollResult result;
            try
            {
                result = await PollOnceAsync(cancellationToken).ConfigureAwait(false);
                if (result.Snapshot is { } snapshot)
                {
                    await onSnapshot(snapshot, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
#pragma warning disable CA1031 // A background loop logs, counts and continues (house style); it never dies on a bad snapshot.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Interlocked.Increment(ref _failures);
                LogHandlerFailed(_logger, ex, _options.FeedName);
                result = new PollResult(PollOutcome.Snapshot, null, null);
            }

            try
            {
                await Task.Delay(NextDelay(result), _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private async Task<PollResult> SendAsync(CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, _options.Url);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-protobuf"));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/octet-stream", 0.9));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("*/*", 0.1));
        if (_etag is not null && EntityTagHeaderValue.TryParse(_etag, out var tag))
        {
            request.Headers.IfNoneMatch.Add(tag);
        }

        if (_lastModified is { } since)
        {
            request.Headers.IfModifiedSince = since;
        }

        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotModified)
        {
            return new PollResult(PollOutcome.NotModified, null, null);
        }

        if (response.StatusCode != HttpStatusCode.OK)
        {
            TimeSpan? retryAfter = response.Headers.RetryAfter switch
            {
                { Delta: { } d } => d,
                { Date: { } date } => date - _time.GetUtcNow(),
                _ => null,
            };
            return new PollResult(PollOutcome.Failed, null, $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}", retryAfter);
        }

        if (response.Content.Headers.ContentLength is { } length && length > _options.MaxBytes)
        {
            return new PollResult(PollOutcome.Failed, null, $"body of {length} bytes exceeds the {_options.MaxBytes}-byte limit");
        }

        var body = await ReadLimitedAsync(response.Content, ct).ConfigureAwait(false);
        if (body is null)
        {
            return new PollResult(PollOutcome.Failed, null, $"body exceeds the {_options.MaxBytes}-byte limit");
        }

        _etag = response.Headers.ETag?.ToString();
        _lastModified = response.Content.Headers.LastModified;
        var snapshot = new GtfsRtSnapshot(_options.FeedName, _time.GetUtcNow().UtcDateTime, body, _etag, _lastModified);
        return new PollResult(PollOutcome.Snapshot, snapshot, null);
    }

    private async Task<byte[]?> ReadLimitedAsync(HttpContent content, CancellationToken ct)
    {
        var stream = await content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream();
            var chunk = new byte[81920];
            int n;
            while ((n = await stream.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + n > _options.MaxBytes)
                {
                    return null;
                }

                buffer.Write(chunk, 0, n);
            }

            return buffer.ToArray();
        }
    }

    [LoggerMessage(EventId = 1301, Level = LogLevel.Information, Message = "Polling GTFS-RT feed {Feed} at {Url} every {Seconds} s")]
    private static partial void LogPollerStarted(ILogger logger, string feed, Uri url, double seconds);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Warning, Message = "GTFS-RT poll of {Feed} ({Url}) failed: {Reason} ({Failures} in a row)")]
    private static partial void LogPollFailed(ILogger logger, string feed, Uri url, string reason, int failures);

    [LoggerMessage(EventId = 1303, Level = LogLevel.Error, Message = "GTFS-RT snapshot handler of {Feed} failed")]
    private static partial void LogHandlerFailed(ILogger logger, Exception exception, string feed);
}
