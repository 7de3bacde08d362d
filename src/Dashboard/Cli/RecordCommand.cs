using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Fleet.Ingest.Recording;
using Fleet.Mqtt;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Cli;

/// <summary>
/// <c>fleet record --mqtt URL --topic FILTER ... --out FILE</c>: records MQTT messages into a recording file
/// (<c>&lt;receive time&gt; &lt;topic&gt; &lt;payload&gt;</c> lines; gzip when the name ends in .gz).
/// </summary>
/// <remarks>
/// Stops after <c>--duration</c>, after <c>--max-messages</c>, or on Ctrl-C; the file is complete in every case.
/// Messages whose payload is not a JSON object, or whose topic cannot be written on one line, are skipped and
/// counted by reason (the recording format holds JSON payloads). Progress goes to stderr.
/// </remarks>
internal static class RecordCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var mqtt = new Option<string>("--mqtt") { Description = "Broker URL: mqtt://host[:port] or mqtts://host[:port]", Required = true };
        var topics = new Option<string[]>("--topic") { Description = "Topic filter to subscribe to (+ and # allowed); repeatable", Required = true, AllowMultipleArgumentsPerToken = false };
        var output = new Option<FileInfo>("--out") { Description = "The recording to write (.gz: gzip)", Required = true };
        var duration = new Option<string?>("--duration") { Description = "Stop after this long: 90s, 10m, 2h, or hh:mm:ss" };
        var maxMessages = new Option<long?>("--max-messages") { Description = "Stop after this many messages" };
        var user = new Option<string?>("--username") { Description = "User name for the broker" };
        var password = new Option<string?>("--password") { Description = "Password for the broker (needs --username)" };
        var qos = new Option<int>("--qos") { Description = "Subscription QoS, 0 or 1", DefaultValueFactory = _ => 1 };
        var clientId = new Option<string?>("--client-id") { Description = "Client id; with it the session is persistent, so a reconnect loses nothing the broker queued" };
        var caFile = new Option<FileInfo?>("--ca-file") { Description = "For mqtts://: trust only the CA certificates in this PEM file" };
        var cmd = new Command("record", """
            Records MQTT messages into a recording file, with progress on stderr.

            Example: fleet record --mqtt mqtts://mqtt.hsl.fi:8883 --topic '/hfp/v2/journey/ongoing/vp/#' --out hfp.txt.gz --duration 10m
            """)
        {
            mqtt, topics, output, duration, maxMessages, user, password, qos, clientId, caFile,
        };
        cmd.SetAction((parse, ct) =>
        {
            TimeSpan? limit = null;
            if (parse.GetValue(duration) is { } d)
            {
                if (!TryParseDuration(d, out var span))
                {
                    Console.Error.WriteLine($"fleet record: --duration '{d}' is not a duration (examples: 90s, 10m, 2h, 00:10:00)");
                    return Task.FromResult(2);
                }

                limit = span;
            }

            var settings = new RecordSettings(
                parse.GetValue(mqtt)!, parse.GetValue(topics)!, parse.GetValue(output)!.FullName, limit, parse.GetValue(maxMessages),
                parse.GetValue(user), parse.GetValue(password), parse.GetValue(qos), parse.GetValue(clientId), parse.GetValue(caFile)?.FullName);
            return RunAsync(settings, ct);
        });
        return cmd;
    }

    /// <summary>Parses <c>90s</c>, <c>10m</c>, <c>2h</c>, <c>1d</c>, a plain number of seconds, or <c>hh:mm:ss</c>.</summary>
    public static bool TryParseDuration(string text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        text = text.Trim();
        var unit = text[^1];
        var number = char.IsLetter(unit) ? text[..^1] : text;
        if (double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n > 0)
        {
            double? seconds = unit switch
            {
                's' => n,
                'm' => n * 60,
                'h' => n * 3600,
                'd' => n * 86400,
                _ when char.IsDigit(unit) || unit == '.' => n,
                _ => null,
            };
            if (seconds is { } s && s <= TimeSpan.MaxValue.TotalSeconds / 2)
            {
                value = TimeSpan.FromSeconds(s);
                return true;
            }

            return false;
        }

        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value) && value > TimeSpan.Zero;
    }

    /// <summary>Everything <c>fleet record</c> was asked to do.</summary>
    internal sealed record RecordSettings(
        string Url, string[] Topics, string Output, TimeSpan? Duration, long? MaxMessages,
        string? UserName, string? Password, int Qos, string? ClientId, string? CaFile);

    /// <summary>Records until a limit or cancellation; returns the exit code.</summary>
    internal static async Task<int> RunAsync(RecordSettings s, CancellationToken cancellationToken, TextWriter? progressOut = null)
    {
        var err = progressOut ?? Console.Error;
        MqttClientOptions options;
        try
        {
            if (s.Qos is not (0 or 1))
            {
                throw new ArgumentException("--qos must be 0 or 1");
            }

            if (s.MaxMessages is < 1)
            {
                throw new ArgumentException("--max-messages must be at least 1");
            }

            foreach (var t in s.Topics)
            {
                MqttTopic.ValidateFilter(t);
            }

            options = new MqttClientOptions
            {
                Server = MqttClientOptions.ParseServer(s.Url),
                UserName = s.UserName,
                Password = s.Password,
                ClientId = s.ClientId ?? "",
                CleanSession = s.ClientId is null,
                CaCertificateFile = s.CaFile,
            };
            _ = new MqttClient(options); // validates the combination of options
        }
        catch (ArgumentException ex)
        {
            await err.WriteLineAsync($"fleet record: {ex.Message}").ConfigureAwait(false);
            return 2;
        }

        using var logging = CliLogging.CreateFactory(LogLevel.Warning);
        await using var client = new MqttClient(options, logging.CreateLogger<MqttClient>());
        try
        {
            await client.ConnectAsync(cancellationToken).ConfigureAwait(false);
            await client.SubscribeAsync([.. s.Topics.Select(t => new MqttSubscription(t, (MqttQos)s.Qos))], cancellationToken).ConfigureAwait(false);
        }
        catch (MqttException ex)
        {
            await err.WriteLineAsync($"fleet record: {ex.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return 130;
        }

        await err.WriteLineAsync($"fleet record: recording {string.Join(", ", s.Topics)} from {s.Url} into {s.Output}").ConfigureAwait(false);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (s.Duration is { } duration)
        {
            stop.CancelAfter(duration);
        }

        long written = 0, notJson = 0, badTopic = 0;
        var exit = 0;
        var sw = Stopwatch.StartNew();
        var interactive = progressOut is null && !Console.IsErrorRedirected;
        var progressEvery = interactive ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(10);
        var nextProgress = progressEvery;
        long lastCount = 0;
        var lastTime = TimeSpan.Zero;
        var writer = RecordingWriter.Create(s.Output);
        await using (writer.ConfigureAwait(false))
        {
            var reader = client.Messages;
            try
            {
                while (await reader.WaitToReadAsync(stop.Token).ConfigureAwait(false))
                {
                    while (reader.TryRead(out var m))
                    {
                        var topic = m.TopicUtf8.Span;
                        var payload = m.Payload.Span.TrimStart(" \t\r\n"u8);
                        if (payload.IsEmpty || payload[0] != (byte)'{')
                        {
                            notJson++;
                        }
                        else if (topic.IndexOfAny((byte)'\n', (byte)'\r') >= 0 || topic.IndexOf(" {"u8) >= 0 || topic.StartsWith("gtfs-rt/"u8))
                        {
                            badTopic++;
                        }
                        else
                        {
                            writer.Write(DateTime.UtcNow, topic, payload);
                            written++;
                            if (written >= s.MaxMessages)
                            {
                                await stop.CancelAsync().ConfigureAwait(false);
                                break;
                            }
                        }
                    }

                    if (sw.Elapsed >= nextProgress)
                    {
                        var now = sw.Elapsed;
                        var rate = (written - lastCount) / (now - lastTime).TotalSeconds;
                        (lastCount, lastTime) = (written, now);
                        nextProgress = now + progressEvery;
                        var line = string.Create(CultureInfo.InvariantCulture,
                            $"recorded {written:N0} messages ({rate:N0} msg/s), {now:hh\\:mm\\:ss} elapsed{Skipped(notJson, badTopic)}");
                        await err.WriteAsync(interactive ? "\r" + line + "   " : line + "\n").ConfigureAwait(false);
                    }

                    if (stop.IsCancellationRequested)
                    {
                        break;
                    }
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                // Duration reached or Ctrl-C: finish the file normally.
            }
            catch (MqttException ex)
            {
                // The client stopped for good (for example the broker refused us after a reconnect).
                await err.WriteLineAsync($"{(interactive ? "\n" : "")}fleet record: {ex.Message}").ConfigureAwait(false);
                exit = 1;
            }
        }

        await client.DisconnectAsync().ConfigureAwait(false);
        var total = sw.Elapsed;
        await err.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"{(interactive ? "\n" : "")}fleet record: wrote {written:N0} messages to {s.Output} in {total.TotalSeconds:0.0} s ({written / Math.Max(total.TotalSeconds, 1e-9):N0} msg/s){Skipped(notJson, badTopic)}; reconnects: {client.Statistics.Reconnects}")).ConfigureAwait(false);
        return exit;
    }

    private static string Skipped(long notJson, long badTopic) =>
        notJson + badTopic == 0 ? "" : string.Create(CultureInfo.InvariantCulture, $"; skipped: {notJson} payload not a JSON object, {badTopic} topic not writable on one line");
}
