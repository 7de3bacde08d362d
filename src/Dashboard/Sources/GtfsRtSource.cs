using Akka.Streams.Dsl;
using Fleet.Actors.Hosting;
using Fleet.Dashboard.Live;
using Fleet.Ingest.Streams;
using Fleet.Gtfs.Realtime;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Sources;

/// <summary>One GTFS-Realtime feed <c>fleet serve --gtfs-rt URL</c> polls.</summary>
public sealed record GtfsRtSourceOptions
{
    /// <summary>The default time between two polls.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(15);

    /// <summary>The feed URL (http or https); it may serve TripUpdates, VehiclePositions or both.</summary>
    public required Uri Url { get; init; }

    /// <summary>Time between polls when all is well (the poller backs off after failures).</summary>
    public TimeSpan Interval { get; init; } = DefaultInterval;

    /// <summary>The source's name in /api/health and /metrics: <c>gtfs-rt:host/path</c>.</summary>
    public string Name => $"gtfs-rt:{Url.Host}{Url.AbsolutePath}";

    /// <summary>Parses and checks a feed URL.</summary>
    /// <exception cref="ArgumentException">Not an absolute http(s) URL.</exception>
    public static GtfsRtSourceOptions Parse(string url, TimeSpan interval)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"'{url}' is not a GTFS-RT feed URL; expected http://... or https://...", nameof(url));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(interval, TimeSpan.FromSeconds(1), nameof(interval));
        return new GtfsRtSourceOptions { Url = uri, Interval = interval };
    }
}

/// <summary>
/// Polls a GTFS-Realtime feed with <see cref="GtfsRtPoller"/> (conditional requests with ETag / If-Modified-Since,
/// backoff on failure) and feeds each new snapshot into the shared <see cref="LivePipeline"/>, as an Akka.Streams
/// graph: <see cref="GtfsRtSources.Poll"/> -> <see cref="GtfsRtSources.Decode"/> -> the pipeline's
/// <see cref="LivePipeline.GtfsRtSink"/>. VehiclePositions become position events (vehicles on the map, tracked),
/// TripUpdates join trips on tracking's trip board.
/// </summary>
/// <remarks>A snapshot that does not decode is counted as rejected (<c>GtfsRtUndecodable</c>) and the next poll goes on.
/// The poller polls only while downstream wants more (backpressure). The <see cref="HttpClient"/> is the source's own.</remarks>
public sealed partial class GtfsRtSource : BackgroundService
{
    private readonly GtfsRtSourceOptions _options;
    private readonly LivePipeline _pipeline;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HttpClient _http = new();
    private readonly GtfsRtPoller _poller;
    private readonly SourceStatus _status;
    private readonly TrackingCluster _cluster;
    private long _snapshots;

    /// <summary>Creates the source; it starts with the host.</summary>
    /// <param name="options">The feed.</param>
    /// <param name="pipeline">Where its snapshots go.</param>
    /// <param name="sources">Where its health entry is registered.</param>
    /// <param name="time">The clock.</param>
    /// <param name="loggers">Loggers.</param>
    /// <param name="cluster">The node whose actor system runs the graph. On a multi-node cluster the feed is polled by
    /// one node at a time (a cluster singleton per feed URL); the others stand by (state <c>standby</c>) and take over
    /// when it dies.</param>
    public GtfsRtSource(GtfsRtSourceOptions options, LivePipeline pipeline, SourceRegistry sources, TimeProvider time, ILoggerFactory loggers,
        TrackingCluster cluster)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(loggers);
        ArgumentNullException.ThrowIfNull(cluster);
        _options = options;
        _pipeline = pipeline;
        _time = time;
        _cluster = cluster;
        _logger = loggers.CreateLogger<GtfsRtSource>();
        _poller = new GtfsRtPoller(
            _http,
            new GtfsRtPollerOptions { Url = options.Url, Interval = options.Interval, FeedName = "serve" },
            time,
            loggers.CreateLogger<GtfsRtPoller>());
        _status = sources.Register(options.Name, "gtfs-rt");
        _status.State = "starting";
    }

    /// <summary>The poller (snapshots, not-modified answers, failures).</summary>
    public GtfsRtPoller Poller => _poller;

    /// <summary>Snapshots decoded and ingested.</summary>
    public long Snapshots => Interlocked.Read(ref _snapshots);

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _status.ReportState("polling", connected: false);
        SingletonLease? lease = null;
        try
        {
            if (_cluster.Options.Clustered)
            {
                var system = await _cluster.GetSystemAsync().WaitAsync(stoppingToken).ConfigureAwait(false);
                lease = SingletonLease.Start(system, LeaseName(_options.Url));
            }

            var feeds = GtfsRtSources.Poll(_options.Name, _poller, _status, _time, stoppingToken, lease is null ? null : ct => WaitForTurnAsync(lease, ct))
                .Via(GtfsRtSources.Decode(_options.Name, _status, _logger))
                .Select(feed =>
                {
                    Interlocked.Increment(ref _snapshots);
                    return feed;
                });
            await StreamedSource.RunAsync(_cluster, _pipeline, feeds, () => _pipeline.GtfsRtSink(_status), stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            lease?.Dispose();
            _status.ReportState("stopped", connected: false);
            LogStopped(_options.Name, Snapshots, _poller.Failures);
        }
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }

    // Before each poll on a cluster: another node may hold the feed's singleton; its events reach this node's map
    // through the cluster, and this node waits in standby until the singleton is its own.
    private async Task WaitForTurnAsync(SingletonLease lease, CancellationToken cancellationToken)
    {
        if (lease.Held)
        {
            return;
        }

        _status.ReportState("standby", connected: false);
        await lease.WhenHeldAsync(cancellationToken).ConfigureAwait(false);
        _status.ReportState("polling", connected: false);
        LogTookOver(_options.Name);
    }

    // The feed's singleton name: the same URL gives the same name on every node.
    private static string LeaseName(Uri url)
    {
        var hash = 2166136261u;
        foreach (var c in url.AbsoluteUri)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return "gtfs-rt-" + hash.ToString("x8", System.Globalization.CultureInfo.InvariantCulture);
    }

    [LoggerMessage(EventId = 5043, Level = LogLevel.Information, Message = "GTFS-RT source {Name}: this node polls the feed now (the cluster's singleton for it)")]
    private partial void LogTookOver(string name);

    [LoggerMessage(EventId = 5042, Level = LogLevel.Information, Message = "GTFS-RT source {Name} stopped after {Snapshots} snapshots and {Failures} failed polls")]
    private partial void LogStopped(string name, long snapshots, long failures);
}
