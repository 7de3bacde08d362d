using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Fleet.Ingest.Recording;
using Fleet.Mqtt;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Cli;

/// <summary>
/// <c>fleet replay --to mqtt://host:port</c>: publishes every replayed MQTT message to a broker under its recorded
/// topic, in replay order (QoS 1 by default, pipelined through the client's in-flight window).
/// </summary>
/// <remarks>
/// GTFS-RT snapshot lines and malformed lines are not MQTT messages and are skipped (counted in <see cref="Status"/>).
/// A full in-flight window makes <see cref="ConsumeAsync"/> wait, which backs up into the replayer. When the channel
/// completes, the target waits for every PUBACK before disconnecting, so a finished replay has been delivered.
/// </remarks>
internal sealed class MqttReplayTarget(MqttClientOptions options, MqttQos qos, ILoggerFactory logging) : IReplayTarget, IAsyncDisposable
{
    private long _published;
    private long _skipped;
    private long _invalidTopic;
    private long _lastPublished;
    private TimeSpan _lastElapsed;
    private MqttClient? _client;

    /// <inheritdoc />
    public string Name => $"{options.Server.Scheme}://{options.Server.Authority}";

    /// <summary>Messages queued for publishing so far.</summary>
    public long Published => Interlocked.Read(ref _published);

    /// <summary>Connects to the broker, so that a wrong URL or password fails before the replay starts.</summary>
    /// <exception cref="MqttException">The broker refused the connection or could not be reached.</exception>
    public async Task ConnectAsync(CancellationToken cancellationToken)
    {
        if (_client is not null)
        {
            return;
        }

        var client = new MqttClient(options, logging.CreateLogger<MqttClient>());
        try
        {
            await client.ConnectAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        Volatile.Write(ref _client, client);
    }

    /// <inheritdoc />
    public async Task ConsumeAsync(ChannelReader<RecordedMessage> messages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        await ConnectAsync(cancellationToken).ConfigureAwait(false);
        var client = _client!;
        while (await messages.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (messages.TryRead(out var m))
            {
                if (m.Kind != RecordKind.Message)
                {
                    Interlocked.Increment(ref _skipped);
                    continue;
                }

                var topic = Encoding.UTF8.GetString(m.Topic.Span);
                if (topic.Length == 0 || topic.AsSpan().IndexOfAny('+', '#') >= 0)
                {
                    // A recorded topic with a wildcard character cannot be published; count it and go on.
                    Interlocked.Increment(ref _invalidTopic);
                    continue;
                }

                await client.EnqueuePublishAsync(topic, m.Payload, qos, retain: false, cancellationToken).ConfigureAwait(false);
                Interlocked.Increment(ref _published);
            }
        }

        // Done only when the broker has everything: a finished replay has been delivered.
        await client.WhenAllAcknowledgedAsync(cancellationToken).ConfigureAwait(false);
        await client.DisconnectAsync().ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _client, null) is { } client)
        {
            await client.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public string Status(TimeSpan elapsed)
    {
        var published = Published;
        var window = elapsed - _lastElapsed;
        var rate = window > TimeSpan.Zero ? (published - _lastPublished) / window.TotalSeconds : 0;
        _lastPublished = published;
        _lastElapsed = elapsed;
        var stats = Volatile.Read(ref _client)?.Statistics ?? default;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"published {published:N0} ({rate:N0}/s)");
        if (qos == MqttQos.AtLeastOnce)
        {
            sb.Append(CultureInfo.InvariantCulture, $", acknowledged {stats.PublishesAcknowledged:N0}, in flight {stats.Inflight:N0}");
        }

        if (stats.Reconnects > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $", reconnects {stats.Reconnects}");
        }

        if (Interlocked.Read(ref _skipped) is var skipped and > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $", skipped {skipped:N0} non-MQTT lines");
        }

        if (Interlocked.Read(ref _invalidTopic) is var invalid and > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $", {invalid:N0} topics with wildcards not published");
        }

        return sb.ToString();
    }
}
