using System.Buffers;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading.Channels;
using Akka.Streams.Dsl;
using Fleet.Actors.Hosting;
using Fleet.Dashboard.Live;
using Fleet.Ingest.Events;
using Fleet.Ingest.Hfp;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Protocol;
using MQTTnet.Server;

namespace Fleet.Dashboard.Sources;

/// <summary>The embedded broker of <c>fleet serve --mqtt-listen HOST:PORT</c>.</summary>
public sealed record MqttBrokerOptions
{
    /// <summary>The address to listen on (loopback unless given).</summary>
    public required IPAddress Address { get; init; }

    /// <summary>The port (1883 for plain MQTT, 8883 with TLS, by convention).</summary>
    public required int Port { get; init; }

    /// <summary>A users file (<c>fleet mqtt-user</c> writes it): publishers must give a user and password in it.
    /// Null: anonymous publishers are accepted.</summary>
    public string? UsersFile { get; init; }

    /// <summary>A PKCS#12 (.pfx) server certificate: the broker speaks TLS only. Null: plain TCP.</summary>
    public string? CertificateFile { get; init; }

    /// <summary>The password of <see cref="CertificateFile"/>, if it has one.</summary>
    public string? CertificatePassword { get; init; }

    /// <summary>The source's name in /api/health and /metrics.</summary>
    public string Name => $"mqtt-listen:{Address}:{Port.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Parses <c>HOST:PORT</c> (an IP address or <c>localhost</c>; <c>[::1]:PORT</c> for IPv6).</summary>
    /// <exception cref="ArgumentException">Not HOST:PORT.</exception>
    public static (IPAddress Address, int Port) ParseEndpoint(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            throw new ArgumentException($"--mqtt-listen '{text}' is not HOST:PORT (e.g. 127.0.0.1:1883)");
        }

        var host = text[..colon].Trim('[', ']');
        var address = host is "localhost" ? IPAddress.Loopback : IPAddress.TryParse(host, out var ip) ? ip
            : throw new ArgumentException($"--mqtt-listen '{text}': '{host}' is not an IP address (or localhost)");
        return (address, port);
    }
}

/// <summary>
/// Users of the embedded broker, one per line: <c>user:pbkdf2-sha256$iterations$salt$hash</c> (base64), written by
/// <c>fleet mqtt-user FILE USER</c>; no password is ever stored in clear.
/// </summary>
public sealed class MqttUsers
{
    private const int Iterations = 100_000;
    private readonly Dictionary<string, string> _hashes;

    private MqttUsers(Dictionary<string, string> hashes) => _hashes = hashes;

    /// <summary>Reads a users file; a malformed line is an error naming the line.</summary>
    /// <exception cref="InvalidDataException">A line is not <c>user:pbkdf2-sha256$...</c>.</exception>
    public static MqttUsers Load(string path)
    {
        var hashes = new Dictionary<string, string>(StringComparer.Ordinal);
        var n = 0;
        foreach (var raw in File.ReadLines(path))
        {
            n++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || !line.AsSpan(colon + 1).StartsWith("pbkdf2-sha256$", StringComparison.Ordinal) || line[(colon + 1)..].Split('$').Length != 4)
            {
                throw new InvalidDataException($"{path}:{n}: not 'user:pbkdf2-sha256$iterations$salt$hash' (write it with fleet mqtt-user)");
            }

            hashes[line[..colon]] = line[(colon + 1)..];
        }

        return new MqttUsers(hashes);
    }

    /// <summary>The file line for a user with a password (a fresh salt each time).</summary>
    public static string Line(string user, string password)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(password);
        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, Iterations, HashAlgorithmName.SHA256, 32);
        return $"{user}:pbkdf2-sha256${Iterations.ToString(CultureInfo.InvariantCulture)}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}";
    }

    /// <summary>True when the user is in the file and the password matches (constant time).</summary>
    public bool Verify(string? user, string? password)
    {
        if (user is null || password is null || !_hashes.TryGetValue(user, out var stored))
        {
            return false;
        }

        var parts = stored.Split('$');
        var iterations = int.Parse(parts[1], CultureInfo.InvariantCulture);
        var salt = Convert.FromBase64String(parts[2]);
        var expected = Convert.FromBase64String(parts[3]);
        var actual = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, expected.Length);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }
}

/// <summary>
/// An MQTT broker inside Fleet (MQTTnet.Server): vehicles, or any HFP publisher, publish straight to
/// <c>fleet serve --mqtt-listen</c>, no separate broker needed. What they publish goes through the same parser,
/// pipeline and counters as any source (<c>/api/health</c> lists it as an mqtt source).
/// </summary>
/// <remarks>
/// What publishers send is an Akka.Streams graph like every source's: the parsed events go into a bounded inbox
/// (<see cref="Inbox"/> events) read by a <c>ChannelSource</c> that runs into the pipeline's <see cref="LivePipeline.EventSink"/>,
/// backpressured by the partitions' acknowledgements. A QoS 1 PUBLISH is acknowledged only once its event is in that
/// inbox (the broker awaits the interceptor before it sends PUBACK), so a publisher faster than tracking is slowed
/// down rather than buffered without bound. Publishers' messages are parsed under one lock (the HFP parser is
/// single-threaded); other subscribers of the broker get them too.
/// </remarks>
public sealed partial class MqttBrokerSource : BackgroundService
{
    private readonly MqttBrokerOptions _options;
    private readonly LivePipeline _pipeline;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HfpStream _hfp;
    private readonly SourceStatus _status;
    private readonly MqttUsers? _users;
    private readonly Lock _parse = new();
    private readonly TrackingCluster _cluster;
    private readonly Channel<VehicleEvent> _inbox = Channel.CreateBounded<VehicleEvent>(
        new BoundedChannelOptions(Inbox) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
    private MqttServer? _server;
    private long _received;

    /// <summary>Events received and not yet taken by the pipeline at most: beyond, publishers wait for their PUBACK.</summary>
    public const int Inbox = 4096;

    /// <summary>Creates the source; it starts with the host. Reads the users file and the certificate now, so a
    /// broken one stops <c>fleet serve</c> before it listens.</summary>
    public MqttBrokerSource(MqttBrokerOptions options, LivePipeline pipeline, SourceRegistry sources, TimeProvider time, ILoggerFactory loggers,
        TrackingCluster cluster)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        _cluster = cluster;
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(loggers);
        _options = options;
        _pipeline = pipeline;
        _time = time;
        _logger = loggers.CreateLogger<MqttBrokerSource>();
        _hfp = new HfpStream(new HfpParser(loggers.CreateLogger<HfpParser>(), timeProvider: time));
        _users = options.UsersFile is { } file ? MqttUsers.Load(file) : null;
        _status = sources.Register(options.Name, "mqtt");
        _status.ParserRejections = _hfp.Rejections;
        _status.State = "starting";
    }

    /// <summary>This source's health entry.</summary>
    public SourceStatus Status => _status;

    /// <summary>Events taken into the inbox (a QoS 1 publish is acknowledged after this counts it); the pipeline
    /// counts them on <see cref="Status"/> as it takes them from there.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>Starts listening before the host reports it started: a publisher that connects then is not refused.</summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await StartServerAsync().ConfigureAwait(false);
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            // Stopping completes the inbox (StopAsync has stopped the server first): what it holds, all acknowledged,
            // still goes into the pipeline before the graph ends.
            await StreamedSource.RunAsync(_cluster, _pipeline, ChannelSource.FromReader(_inbox.Reader), () => _pipeline.EventSink(_status), stoppingToken,
                drain: () => _inbox.Writer.TryComplete()).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            // The graph ended (drained, or its pipeline failed): nothing more is taken.
            _inbox.Writer.TryComplete();
        }
    }

    private async Task StartServerAsync()
    {
        var builder = new MqttServerOptionsBuilder();
        if (_options.CertificateFile is { } pfx)
        {
            var certificate = X509CertificateLoader.LoadPkcs12FromFile(pfx, _options.CertificatePassword);
            builder = builder.WithoutDefaultEndpoint().WithEncryptedEndpoint().WithEncryptedEndpointPort(_options.Port)
                .WithEncryptedEndpointBoundIPAddress(_options.Address).WithEncryptionCertificate(certificate);
        }
        else
        {
            builder = builder.WithDefaultEndpoint().WithDefaultEndpointPort(_options.Port).WithDefaultEndpointBoundIPAddress(_options.Address);
        }

        var server = _server = new MqttServerFactory().CreateMqttServer(builder.Build());
        server.ValidatingConnectionAsync += e =>
        {
            if (string.IsNullOrEmpty(e.ClientId))
            {
                // MQTT 5 lets the broker name a client that gave no id (3.1.1 clients must give one with MQTTnet).
                e.AssignedClientIdentifier = "fleet-" + Guid.NewGuid().ToString("N");
            }

            if (_users is not null && !_users.Verify(e.UserName, e.Password))
            {
                e.ReasonCode = MqttConnectReasonCode.BadUserNameOrPassword;
                _status.CountFailure();
                LogRefused(e.ClientId, e.UserName ?? "(none)");
            }

            return Task.CompletedTask;
        };
        server.InterceptingPublishAsync += async e =>
        {
            if (Parse(e.ApplicationMessage) is { } ev)
            {
                // Completes when the inbox took it: while it is full this publisher waits (its PUBACK with it).
                try
                {
                    await _inbox.Writer.WriteAsync(ev, e.CancellationToken).ConfigureAwait(false);
                    Interlocked.Increment(ref _received);
                }
                catch (ChannelClosedException)
                {
                    // Not taken (the pipeline is gone): an MQTT 5 publisher is told; a 3.1.1 PUBACK cannot say so.
                    e.ProcessPublish = false;
                    e.Response.ReasonCode = MqttPubAckReasonCode.UnspecifiedError;
                    _status.CountRejected("PipelineStopped");
                }
            }
        };

        try
        {
            await server.StartAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException)
        {
            _status.State = "failed";
            _status.LastError = ex.Message;
            LogListenFailed(_options.Name, ex.Message);
            return;
        }

        _status.Connected = true;
        _status.State = "connected";
        LogListening(_options.Name, _options.CertificateFile is null ? "MQTT" : "MQTT over TLS", _users is null ? "anonymous" : "users file");
    }

    // Parses one publish (one parse at a time: the parser keeps per-stream state); null when refused (counted by reason).
    private VehicleEvent? Parse(MqttApplicationMessage message)
    {
        var receiveTime = _time.GetUtcNow().UtcDateTime;
        var topic = Encoding.UTF8.GetBytes(message.Topic);
        ReadOnlySpan<byte> payload = message.Payload.IsSingleSegment ? message.Payload.FirstSpan : message.Payload.ToArray();
        lock (_parse)
        {
            return _hfp.Process(topic, payload, receiveTime, out var ev) == HfpOutcome.Event ? ev : null;
        }
    }

    /// <inheritdoc />
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // The server first: publishers waiting for room are cut off unacknowledged (they send again elsewhere or
        // later); then the inbox drains what was acknowledged into the pipeline (ExecuteAsync's graph ends with it).
        if (_server is { } server)
        {
            await server.StopAsync().ConfigureAwait(false);
            server.Dispose();
        }

        await base.StopAsync(cancellationToken).ConfigureAwait(false);

        _status.Connected = false;
        _status.State = "stopped";
    }

    [LoggerMessage(EventId = 5070, Level = LogLevel.Information, Message = "Embedded broker {Name} listening ({Protocol}, {Auth})")]
    private partial void LogListening(string name, string protocol, string auth);

    [LoggerMessage(EventId = 5071, Level = LogLevel.Warning, Message = "Embedded broker: client {ClientId} refused (user {User})")]
    private partial void LogRefused(string clientId, string user);

    [LoggerMessage(EventId = 5072, Level = LogLevel.Error, Message = "Embedded broker {Name} cannot listen: {Reason}")]
    private partial void LogListenFailed(string name, string reason);
}
