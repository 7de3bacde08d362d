using System.Globalization;
using System.Threading.Channels;
using Fleet.Dashboard.Live;
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

    /// <summary>First wait after a failed connection; doubles per failure up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan MinBackoff { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest wait between two connection attempts.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The source's name in /api/health and /metrics: <c>mqtt:host:port</c> (no credentials).</summary>
    public string Name => $"mqtt:{Server.Host}:{(Server.IsDefaultPort || Server.Port <= 0 ? (Server.Scheme == "mqtts" ? 8883 : 1883) : Server.Port).ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The wait after <paramref name="failures"/> consecutive failures: doubled per failure, capped.</summary>
    public TimeSpan Backoff(int failures)
    {
        var factor = Math.Pow(2, Math.Clamp(failures - 1, 0, 30));
        var wait = TimeSpan.FromTicks((long)Math.Min(MinBackoff.Ticks * factor, MaxBackoff.Ticks));
        return wait < MinBackoff ? MinBackoff : wait;
    }

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
/// Subscribes to an MQTT broker and feeds the HSL HFP messages it receives through <see cref="HfpParser"/> into the
/// shared <see cref="LivePipeline"/>. Messages the parser refuses are counted by reason on the source's
/// <see cref="SourceStatus"/> (shown in /api/health and /metrics).
/// </summary>
/// <remarks>
/// <para>Connection: the client reconnects by itself (with its own backoff and resubscription) once it was connected;
/// this source retries the first connection, and starts a new client when one faults (bad credentials, a broker that
/// refuses), waiting <see cref="MqttSourceOptions.MinBackoff"/>, doubled per consecutive failure up to
/// <see cref="MqttSourceOptions.MaxBackoff"/>.</para>
/// <para>One loop reads the client's messages, so the parser (single-threaded) needs no lock; the receive time of a
/// message is the wall clock when it is read.</para>
/// </remarks>
public sealed partial class MqttSource : BackgroundService
{
    private readonly MqttSourceOptions _options;
    private readonly LivePipeline _pipeline;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly HfpStream _hfp;
    private readonly SourceStatus _status;
    private readonly string _topicList;

    /// <summary>Creates the source; it starts with the host.</summary>
    public MqttSource(MqttSourceOptions options, LivePipeline pipeline, SourceRegistry sources, TimeProvider time, ILoggerFactory loggers)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(loggers);
        _options = options;
        _pipeline = pipeline;
        _time = time;
        _loggers = loggers;
        _logger = loggers.CreateLogger<MqttSource>();
        _hfp = new HfpStream(new HfpParser(loggers.CreateLogger<HfpParser>(), timeProvider: time));
        _status = sources.Register(options.Name, "mqtt");
        _status.ParserRejections = _hfp.Rejections;
        _status.State = "starting";
        _topicList = string.Join(' ', options.SubscribedFilters);
    }

    /// <summary>The parser's figures (parsed, rejected by reason).</summary>
    public HfpStream Hfp => _hfp;

    /// <summary>This source's health entry.</summary>
    public SourceStatus Status => _status;

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            var received = false;
            try
            {
                received = await RunClientAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (ex is MqttException or IOException or ChannelClosedException or TimeoutException
                or System.Net.Sockets.SocketException or System.Security.Authentication.AuthenticationException)
            {
                _status.LastError = ex.Message;
                _status.CountFailure();
                LogConnectionFailed(_options.Name, ex.Message);
            }
            finally
            {
                _status.Connected = false;
            }

            if (stoppingToken.IsCancellationRequested)
            {
                break;
            }

            // A client that delivered messages before it stopped starts the backoff again from the shortest wait.
            failures = received ? 1 : failures + 1;
            var wait = _options.Backoff(failures);
            _status.State = "reconnecting";
            try
            {
                await Task.Delay(wait, _time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        _status.State = "stopped";
    }

    // Connects one client and reads it until it stops; returns whether any message arrived.
    private async Task<bool> RunClientAsync(CancellationToken ct)
    {
        _status.State = "connecting";
        await using var client = new MqttClient(
            new MqttClientOptions
            {
                Server = _options.Server,
                UserName = _options.UserName,
                Password = _options.Password,
                TimeProvider = _time,
            },
            _loggers.CreateLogger<MqttClient>());
        // The client reports Connected before this source's first SUBSCRIBE is acknowledged; the status says
        // "connected" only once the subscriptions are in place (after a reconnect the client restores them first).
        var subscribed = false;
        client.StateChanged += (_, state) =>
        {
            if (!Volatile.Read(ref subscribed))
            {
                return;
            }

            _status.Connected = state == MqttClientState.Connected;
            _status.State = state switch
            {
                MqttClientState.Connected => "connected",
                MqttClientState.Reconnecting => "reconnecting",
                MqttClientState.Faulted => "failed",
                MqttClientState.Disconnected => "stopped",
                _ => "connecting",
            };
        };
        await client.ConnectAsync(ct).ConfigureAwait(false);
        await client.SubscribeAsync([.. _options.SubscribedFilters.Select(t => new MqttSubscription(t, MqttQos.AtLeastOnce))], ct).ConfigureAwait(false);
        Volatile.Write(ref subscribed, true);
        _status.Connected = true;
        _status.State = "connected";
        _status.LastError = null;
        LogSubscribed(_options.Name, _topicList);

        var received = false;
        var reader = client.Messages;
        while (await reader.WaitToReadAsync(ct).ConfigureAwait(false))
        {
            while (reader.TryRead(out var message))
            {
                received = true;
                var receiveTime = _time.GetUtcNow().UtcDateTime;
                if (_hfp.Process(message.TopicUtf8.Span, message.Payload.Span, receiveTime, out var ev) == HfpOutcome.Event)
                {
                    _pipeline.Ingest(ev, _status);
                }
            }
        }

        // The channel completed without a failure: the client was disconnected.
        return received;
    }

    [LoggerMessage(EventId = 5030, Level = LogLevel.Information, Message = "MQTT source {Name} subscribed to {Topics}")]
    private partial void LogSubscribed(string name, string topics);

    [LoggerMessage(EventId = 5031, Level = LogLevel.Warning, Message = "MQTT source {Name} failed: {Reason}; retrying with backoff")]
    private partial void LogConnectionFailed(string name, string reason);
}
