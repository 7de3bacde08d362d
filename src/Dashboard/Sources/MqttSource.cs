using System.Globalization;
using Fleet.Actors.Hosting;
using Fleet.Dashboard.Live;
using Fleet.Ingest.Streams;
using Fleet.Ingest.Hfp;
using Fleet.Mqtt;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Sources;

/// <summary>One MQTT broker <c>fleet serve --mqtt URL --topic FILTER</c> subscribes to.</summary>
public sealed record MqttSourceOptions
{
    /// <summary>The topic filter used when none is given: every HSL HFP v2 ongoing-journey event.</summary>
    public const string DefaultTopic = "/hfp/v2/journey/ongoing/#";

    /// <summary>The broker, <c>mqtt://host[:port]</c> or <c>mqtts://host[:port]</c>, without credentials.</summary>
    public required Uri Server { get; init; }

    /// <summary>User name (from <c>user:pass@</c> in the URL), or null.</summary>
    public string? UserName { get; init; }

    /// <summary>Password (from <c>user:pass@</c> in the URL), or null.</summary>
    public string? Password { get; init; }

    /// <summary>Topic filters (wildcards allowed); at least one.</summary>
    public required IReadOnlyList<string> Topics { get; init; }

    /// <summary>The shared-subscription group of <c>fleet serve --cluster</c>'s nodes.</summary>
    public const string ClusterShareGroup = "fleet";

    /// <summary>
    /// A shared-subscription group (<c>$share/GROUP/FILTER</c>, MQTT 5's, which mosquitto also gives MQTT 3.1.1
    /// clients): the broker hands each message to one subscriber of the group, so the nodes of a cluster consume a
    /// broker once between them. Null: a plain subscription (every message to this source).
    /// </summary>
    public string? ShareGroup { get; init; }

    /// <summary>The filters as subscribed: each in <see cref="ShareGroup"/> when there is one.</summary>
    public IReadOnlyList<string> SubscribedFilters => ShareGroup is { } g ? [.. Topics.Select(t => $"$share/{g}/{t}")] : Topics;

    /// <summary>First wait after a failed connection; doubles per failure up to <see cref="MaxBackoff"/>
    /// (<see cref="MqttSourceSettings"/>, Akka.Streams' <c>RestartSource</c>).</summary>
    public TimeSpan MinBackoff { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest wait between two connection attempts.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The source's name in /api/health and /metrics: <c>mqtt:host:port</c> (no credentials).</summary>
    public string Name => $"mqtt:{Server.Host}:{(Server.IsDefaultPort || Server.Port <= 0 ? (Server.Scheme == "mqtts" ? 8883 : 1883) : Server.Port).ToString(CultureInfo.InvariantCulture)}";

    /// <summary>
    /// Parses a broker URL: <c>mqtt://</c> or <c>mqtts://</c>, optionally with <c>user:pass@</c> (percent-encoded).
    /// </summary>
    /// <exception cref="ArgumentException">Not an MQTT URL.</exception>
    public static MqttSourceOptions Parse(string url, IReadOnlyList<string> topics)
    {
        ArgumentNullException.ThrowIfNull(topics);
        var uri = MqttClientOptions.ParseServer(url);
        string? user = null, password = null;
        if (uri.UserInfo is { Length: > 0 } info)
        {
            var colon = info.IndexOf(':', StringComparison.Ordinal);
            user = Uri.UnescapeDataString(colon < 0 ? info : info[..colon]);
            password = colon < 0 ? null : Uri.UnescapeDataString(info[(colon + 1)..]);
        }

        foreach (var t in topics)
        {
            MqttTopic.ValidateFilter(t);
        }

        var server = new UriBuilder(uri) { UserName = string.Empty, Password = string.Empty }.Uri;
        return new MqttSourceOptions
        {
            Server = server,
            UserName = user,
            Password = password,
            Topics = topics.Count == 0 ? [DefaultTopic] : topics,
        };
    }
}

/// <summary>
/// Subscribes to an MQTT broker and feeds the HSL HFP messages it receives into the shared <see cref="LivePipeline"/>,
/// as an Akka.Streams graph: <see cref="MqttSources.Subscribe"/> (reconnecting with backoff) -> <see cref="HfpFlows.Parse"/>
/// -> the pipeline's <see cref="LivePipeline.EventSink"/> (backpressure from tracking reaches the client's inbox and
/// from there the broker). Messages the parser refuses are counted by reason on the source's
/// <see cref="SourceStatus"/> (shown in /api/health and /metrics).
/// </summary>
public sealed class MqttSource : BackgroundService
{
    private readonly MqttSourceOptions _options;
    private readonly LivePipeline _pipeline;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;
    private readonly TrackingCluster _cluster;
    private readonly HfpStream _hfp;
    private readonly SourceStatus _status;

    /// <summary>Creates the source; it starts with the host.</summary>
    /// <param name="options">The broker and filters.</param>
    /// <param name="pipeline">Where its events go.</param>
    /// <param name="sources">Where its health entry is registered.</param>
    /// <param name="time">The clock.</param>
    /// <param name="loggers">Loggers.</param>
    /// <param name="cluster">The node whose actor system runs the source's graph.</param>
    public MqttSource(MqttSourceOptions options, LivePipeline pipeline, SourceRegistry sources, TimeProvider time, ILoggerFactory loggers, TrackingCluster cluster)
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
        _loggers = loggers;
        _cluster = cluster;
        _hfp = new HfpStream(new HfpParser(loggers.CreateLogger<HfpParser>(), timeProvider: time));
        _status = sources.Register(options.Name, "mqtt");
        _status.ParserRejections = _hfp.Rejections;
        _status.State = "starting";
    }

    /// <summary>The parser's figures (parsed, rejected by reason).</summary>
    public HfpStream Hfp => _hfp;

    /// <summary>This source's health entry.</summary>
    public SourceStatus Status => _status;

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = new MqttSourceSettings
        {
            Client = new MqttClientOptions
            {
                Server = _options.Server,
                UserName = _options.UserName,
                Password = _options.Password,
                TimeProvider = _time,
            },
            Filters = _options.SubscribedFilters,
            Name = _options.Name,
            MinBackoff = _options.MinBackoff,
            MaxBackoff = _options.MaxBackoff,
        };
        try
        {
            var messages = MqttSources.Subscribe(settings, _status, _loggers).Via(HfpFlows.Parse(_hfp, _time));
            await StreamedSource.RunAsync(_cluster, _pipeline, messages, () => _pipeline.EventSink(_status), stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            _status.ReportState("stopped", connected: false);
        }
    }
}
