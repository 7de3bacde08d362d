using Akka;
using Akka.Streams;
using Akka.Streams.Dsl;
using Akka.Util;
using Fleet.Mqtt;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fleet.Ingest.Streams;

/// <summary>What an MQTT subscription source connects to and how it retries.</summary>
public sealed record MqttSourceSettings
{
    /// <summary>The broker, credentials and clock of each client the source starts.</summary>
    public required MqttClientOptions Client { get; init; }

    /// <summary>The topic filters subscribed, as sent (a shared subscription's <c>$share/GROUP/</c> included).</summary>
    public required IReadOnlyList<string> Filters { get; init; }

    /// <summary>The source's name, for its log lines (no credentials).</summary>
    public string Name { get; init; } = "mqtt";

    /// <summary>First wait after a client stopped or failed; doubled per restart up to <see cref="MaxBackoff"/>, and
    /// back to this after a client ran longer than <see cref="MaxBackoff"/>.</summary>
    public TimeSpan MinBackoff { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest wait between two clients.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Random share added to each wait, so many sources do not reconnect in step.</summary>
    public double RandomFactor { get; init; } = 0.2;
}

/// <summary>
/// MQTT subscriptions as Akka.Streams sources: each message the broker sends, in order, with backpressure (a
/// downstream that does not pull leaves messages in the client's bounded inbox, then in the socket: the broker holds
/// them, QoS 1 flow control slows it).
/// </summary>
/// <remarks>
/// <para>Connection: one <see cref="MqttClient"/> at a time, which reconnects by itself (resubscribing) once it was
/// connected. When a client cannot connect, faults (bad credentials, a broker that refuses) or is disconnected for
/// good, <see cref="RestartSource"/> starts a new one after a backoff (<see cref="MqttSourceSettings.MinBackoff"/>,
/// doubled per restart, capped, reset after a client ran longer than the minimum). The client is disposed whenever
/// its part of the stream ends (completion, failure or cancellation).</para>
/// <para>Health: <c>connecting</c> while a client connects and subscribes, <c>connected</c> once its subscriptions are
/// acknowledged, <c>reconnecting</c> while it (or the source) reconnects, <c>failed</c> on a fault; failures counted
/// with their reason.</para>
/// </remarks>
public static partial class MqttSources
{
    /// <summary>The broker's messages for <paramref name="settings"/>' filters, reconnecting for ever (until cancelled).</summary>
    /// <param name="settings">Broker, filters, backoff.</param>
    /// <param name="health">Where states and failures are reported.</param>
    /// <param name="loggers">Loggers for the clients and the source.</param>
    public static Source<MqttMessage, NotUsed> Subscribe(MqttSourceSettings settings, ISourceHealth health, ILoggerFactory? loggers = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(health);
        if (settings.Filters.Count == 0)
        {
            throw new ArgumentException("an MQTT source needs at least one topic filter", nameof(settings));
        }

        loggers ??= NullLoggerFactory.Instance;
        // The backoff starts over only after a client ran longer than the longest wait: a client refused after a slow
        // handshake does not reset it.
        var restart = RestartSettings.Create(settings.MinBackoff, settings.MaxBackoff, settings.RandomFactor)
            .WithMaxRestarts(int.MaxValue, settings.MaxBackoff);
        return RestartSource.WithBackoff(() => OneClient(settings, health, loggers), restart);
    }

    // One client's life: connect and subscribe, then its messages until it is disconnected (completes) or faults (fails).
    private static Source<MqttMessage, NotUsed> OneClient(MqttSourceSettings settings, ISourceHealth health, ILoggerFactory loggers)
    {
        var logger = loggers.CreateLogger(typeof(MqttSources));
        return Source.UnfoldResourceAsync<MqttMessage, Connection>(
            () => ConnectAsync(settings, health, loggers, logger),
            c => c.ReadAsync(logger),
            c => c.CloseAsync());
    }

    private static async Task<Connection> ConnectAsync(MqttSourceSettings settings, ISourceHealth health, ILoggerFactory loggers, ILogger logger)
    {
        health.ReportState("connecting", connected: false);
        var connection = new Connection(settings, new MqttClient(settings.Client, loggers.CreateLogger<MqttClient>()), health);
        try
        {
            await connection.Client.ConnectAsync().ConfigureAwait(false);
            await connection.Client.SubscribeAsync([.. settings.Filters.Select(t => new MqttSubscription(t, MqttQos.AtLeastOnce))]).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Whatever stopped it (a refusal, a timeout, a client disposed under it): said, the client closed, retried.
            Failed(health, logger, settings.Name, ex);
            await connection.CloseAsync().ConfigureAwait(false);
            throw;
        }

        connection.Subscribed();
        health.ReportRecovered();
        health.ReportState("connected", connected: true);
        var topics = string.Join(' ', settings.Filters);
        LogSubscribed(logger, settings.Name, topics);
        return connection;
    }

    private static void Failed(ISourceHealth health, ILogger logger, string name, Exception ex)
    {
        health.ReportFailure(ex.Message);
        health.ReportState("reconnecting", connected: false);
        LogConnectionFailed(logger, name, ex.Message);
    }

    [LoggerMessage(EventId = 5030, Level = LogLevel.Information, Message = "MQTT source {Name} subscribed to {Topics}")]
    private static partial void LogSubscribed(ILogger logger, string name, string topics);

    [LoggerMessage(EventId = 5031, Level = LogLevel.Warning, Message = "MQTT source {Name} failed: {Reason}; retrying with backoff")]
    private static partial void LogConnectionFailed(ILogger logger, string name, string reason);

    // A client with its state reporting: the client reports Connected before the first SUBSCRIBE is acknowledged, so the
    // health says "connected" only once the subscriptions are in place (after a reconnect the client restores them first).
    private sealed class Connection(MqttSourceSettings settings, MqttClient client, ISourceHealth health)
    {
        private int _closed;

        public MqttClient Client => client;

        // From here on the client's own reconnects show in the health.
        public void Subscribed() => client.StateChanged += OnStateChanged;

        public async Task<Option<MqttMessage>> ReadAsync(ILogger logger)
        {
            var reader = client.Messages;
            if (reader.TryRead(out var message))
            {
                return message;
            }

            try
            {
                while (await reader.WaitToReadAsync().ConfigureAwait(false))
                {
                    if (reader.TryRead(out message))
                    {
                        return message;
                    }
                }
            }
            catch (Exception ex)
            {
                Failed(health, logger, settings.Name, ex);
                throw;
            }

            // Completed without a fault: the client was disconnected for good; the source starts another.
            health.ReportState("reconnecting", connected: false);
            return Option<MqttMessage>.None;
        }

        public async Task<Done> CloseAsync()
        {
            if (Interlocked.Exchange(ref _closed, 1) == 0)
            {
                client.StateChanged -= OnStateChanged;
                await client.DisposeAsync().ConfigureAwait(false);
            }

            return Done.Instance;
        }

        private void OnStateChanged(object? sender, MqttClientState state)
        {
            if (Volatile.Read(ref _closed) != 0)
            {
                return;
            }

            health.ReportState(
                state switch
                {
                    MqttClientState.Connected => "connected",
                    MqttClientState.Reconnecting => "reconnecting",
                    MqttClientState.Faulted => "failed",
                    MqttClientState.Disconnected => "stopped",
                    _ => "connecting",
                },
                state == MqttClientState.Connected);
        }
    }
}
