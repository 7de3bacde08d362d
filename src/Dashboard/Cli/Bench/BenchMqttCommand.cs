using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
using Fleet.Mqtt;

namespace Fleet.Dashboard.Cli;

/// <summary>
/// <c>fleet bench mqtt</c>: MQTT receive throughput of our client (receiving and parsing HFP) against
/// <c>mosquitto_sub</c>, on the same broker with the same load, side by side in one run.
/// </summary>
/// <remarks>
/// Method: a private mosquitto is started. Each contender gets a persistent session (its own client id subscribed
/// to <c>/hfp/#</c> with QoS 1) and goes offline; the load (N QoS 1 messages) is then published once, so the broker
/// queues the same N messages for both. Each contender in turn connects and drains its queue; the time runs from
/// process start (mosquitto_sub) or connect (ours) to the N-th message. Rounds alternate the order. The ratio is
/// our rate divided by mosquitto_sub's (above 1: faster), from the best round of each. Every round uses new client ids
/// and removes its sessions at the end, so no broker state (a session, unacknowledged messages) carries over.
/// </remarks>
internal static class BenchMqttCommand
{
    private const string SubClientPrefix = "bench-mosquitto_sub-";
    private const string FleetClientPrefix = "bench-fleet-";

    /// <summary>The load's topics are HFP topics (from the recording, or synthetic ones), all under this filter.</summary>
    private const string Filter = "/hfp/#";

    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var messages = new Option<int>("--messages") { Description = "Messages in the load", DefaultValueFactory = _ => 200_000 };
        var rounds = new Option<int>("--rounds") { Description = "Rounds (each measures both contenders)", DefaultValueFactory = _ => 3 };
        var from = new Option<FileInfo?>("--from") { Description = "A recording whose HFP messages make up the load (cycled); default: synthetic HFP VP messages" };
        var noParse = new Option<bool>("--no-parse") { Description = "Only receive; do not parse the HFP payloads" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object on stdout" };
        var cmd = new Command("mqtt", """
            MQTT receive throughput: our client (receive + HFP parse) vs mosquitto_sub, same broker, same load, one run.

            Example: fleet bench mqtt --messages 200000 --json
            """)
        {
            messages, rounds, from, noParse, json,
        };
        cmd.SetAction((parse, ct) => RunAsync(
            parse.GetValue(messages), parse.GetValue(rounds), parse.GetValue(from)?.FullName, !parse.GetValue(noParse), parse.GetValue(json), ct));
        return cmd;
    }

    private static async Task<int> RunAsync(int count, int rounds, string? from, bool parse, bool json, CancellationToken ct)
    {
        if (count < 1 || rounds < 1)
        {
            Console.Error.WriteLine("fleet bench mqtt: --messages and --rounds must be at least 1");
            return 2;
        }

        if (from is not null && !File.Exists(from))
        {
            Console.Error.WriteLine($"fleet bench mqtt: file not found: {from}");
            return 2;
        }

        if (!File.Exists("/usr/bin/mosquitto_sub") || !File.Exists(LocalMosquitto.Binary))
        {
            Console.Error.WriteLine("fleet bench mqtt: needs mosquitto and mosquitto_sub (apt-get install mosquitto mosquitto-clients)");
            return 2;
        }

        var load = LoadMessages(from, Math.Min(count, 50_000));
        var payloadBytes = load.Sum(m => (long)m.Payload.Length) / load.Count;
        await using var broker = await LocalMosquitto.StartAsync(
            [$"max_queued_messages {count + 1000}", "max_queued_bytes 0", "max_inflight_messages 100"], ct).ConfigureAwait(false);

        var subResults = new List<double>();
        var fleetResults = new List<double>();
        var mqttnetResults = new List<double>();
        long parsed = 0, rejected = 0;
        for (var round = 0; round < rounds; round++)
        {
            var subClient = SubClientPrefix + (round + 1).ToString(CultureInfo.InvariantCulture);
            var fleetClient = FleetClientPrefix + (round + 1).ToString(CultureInfo.InvariantCulture);
            var mqttnetClient = "bench-mqttnet-" + (round + 1).ToString(CultureInfo.InvariantCulture);
            await CreateSessionAsync(broker.Url, subClient, ct).ConfigureAwait(false);
            await CreateSessionAsync(broker.Url, fleetClient, ct).ConfigureAwait(false);
            await CreateSessionAsync(broker.Url, mqttnetClient, ct).ConfigureAwait(false);
            var publishSeconds = await PublishLoadAsync(broker.Url, load, count, ct).ConfigureAwait(false);
            Progress(json, $"round {round + 1}: published {count:N0} QoS 1 messages ({payloadBytes} bytes on average) in {publishSeconds:0.00} s");

            // Rotate who goes first, so none always meets a cold (or warm) broker.
            for (var turn = 0; turn < 3; turn++)
            {
                var who = (turn + round) % 3;
                if (who == 2)
                {
                    var s = await RunMqttnetAsync(broker.Port, mqttnetClient, count, parse, ct).ConfigureAwait(false);
                    mqttnetResults.Add(s);
                    Progress(json, $"round {round + 1}: MQTTnet received{(parse ? " and parsed" : "")} {count:N0} in {s:0.000} s ({count / s:N0} msg/s)");
                }
                else if (who == 0)
                {
                    var s = await RunMosquittoSubAsync(broker.Port, subClient, count, ct).ConfigureAwait(false);
                    subResults.Add(s);
                    Progress(json, $"round {round + 1}: mosquitto_sub received {count:N0} in {s:0.000} s ({count / s:N0} msg/s)");
                }
                else
                {
                    var (s, p, r) = await RunFleetAsync(broker.Url, fleetClient, count, parse, ct).ConfigureAwait(false);
                    fleetResults.Add(s);
                    parsed = p;
                    rejected = r;
                    Progress(json, $"round {round + 1}: fleet received{(parse ? " and parsed" : "")} {count:N0} in {s:0.000} s ({count / s:N0} msg/s)");
                }
            }

            await RemoveSessionAsync(broker.Url, subClient, ct).ConfigureAwait(false);
            await RemoveSessionAsync(broker.Url, fleetClient, ct).ConfigureAwait(false);
            await RemoveSessionAsync(broker.Url, mqttnetClient, ct).ConfigureAwait(false);
        }

        var subBest = subResults.Min();
        var fleetBest = fleetResults.Min();
        var ratio = subBest / fleetBest;
        var mqttnetBest = mqttnetResults.Min();
        if (json)
        {
            using var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteNumber("messages", count);
                w.WriteNumber("payloadBytes", payloadBytes);
                w.WriteString("qos", "1");
                w.WriteBoolean("parse", parse);
                w.WriteNumber("rounds", rounds);
                w.WriteNumber("mosquittoSubSeconds", Math.Round(subBest, 4));
                w.WriteNumber("fleetSeconds", Math.Round(fleetBest, 4));
                w.WriteNumber("mosquittoSubPerSecond", Math.Round(count / subBest));
                w.WriteNumber("fleetPerSecond", Math.Round(count / fleetBest));
                w.WriteNumber("ratio", Math.Round(ratio, 3));
                w.WriteNumber("mqttnetSeconds", Math.Round(mqttnetBest, 4));
                w.WriteNumber("mqttnetPerSecond", Math.Round(count / mqttnetBest));
                w.WriteNumber("fleetVsMqttnet", Math.Round(mqttnetBest / fleetBest, 3));
                w.WriteNumber("parsed", parsed);
                w.WriteNumber("rejected", rejected);
                w.WriteEndObject();
            }

            Console.Out.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
        }
        else
        {
            var what = parse ? "receive + HFP parse" : "receive only";
            var counts = parse ? string.Create(CultureInfo.InvariantCulture, $" (parsed {parsed:N0}, rejected {rejected:N0})") : "";
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"""
                mosquitto_sub: {count / subBest:N0} msg/s (best of {rounds}: {subBest:0.000} s)
                fleet ({what}): {count / fleetBest:N0} msg/s (best of {rounds}: {fleetBest:0.000} s)
                ratio fleet / mosquitto_sub: {ratio:0.00}{counts}
                MQTTnet 5 client ({what}): {count / mqttnetBest:N0} msg/s (best of {rounds}: {mqttnetBest:0.000} s)
                ratio fleet / MQTTnet: {mqttnetBest / fleetBest:0.00} (above 1: Fleet's client is faster; the day it is not, Fleet switches)
                """));
        }

        return 0;
    }

    private static void Progress(bool json, string line)
    {
        _ = json;
        Console.Error.WriteLine(line);
    }

    private static async Task CreateSessionAsync(Uri broker, string clientId, CancellationToken ct)
    {
        await using var client = new MqttClient(new MqttClientOptions { Server = broker, ClientId = clientId, CleanSession = false });
        await client.ConnectAsync(ct).ConfigureAwait(false);
        await client.SubscribeAsync(Filter, MqttQos.AtLeastOnce, ct).ConfigureAwait(false);
        await client.DisconnectAsync().ConfigureAwait(false);
    }

    /// <summary>A clean-session connection with the same id ends the persistent session and drops what it still holds.</summary>
    private static async Task RemoveSessionAsync(Uri broker, string clientId, CancellationToken ct)
    {
        await using var client = new MqttClient(new MqttClientOptions { Server = broker, ClientId = clientId, CleanSession = true });
        await client.ConnectAsync(ct).ConfigureAwait(false);
        await client.DisconnectAsync().ConfigureAwait(false);
    }

    private static async Task<double> PublishLoadAsync(Uri broker, List<(string Topic, byte[] Payload)> load, int count, CancellationToken ct)
    {
        await using var client = new MqttClient(new MqttClientOptions { Server = broker, MaxInflight = 1000 });
        await client.ConnectAsync(ct).ConfigureAwait(false);
        var sw = Stopwatch.StartNew();
        Task last = Task.CompletedTask;
        for (var i = 0; i < count; i++)
        {
            var (topic, payload) = load[i % load.Count];
            last = await client.EnqueuePublishAsync(topic, payload, MqttQos.AtLeastOnce, cancellationToken: ct).ConfigureAwait(false);
        }

        // mosquitto acknowledges in order; wait for all of them anyway.
        await last.ConfigureAwait(false);
        while (client.Statistics.PublishesAcknowledged < count)
        {
            await Task.Delay(10, ct).ConfigureAwait(false);
        }

        return sw.Elapsed.TotalSeconds;
    }

    private static async Task<double> RunMosquittoSubAsync(int port, string clientId, int count, CancellationToken ct)
    {
        // -c: the persistent session made above; -C: exit after count messages; output to /dev/null by the shell.
        var start = new ProcessStartInfo("sh") { UseShellExecute = false, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(string.Create(CultureInfo.InvariantCulture,
            $"exec mosquitto_sub -h 127.0.0.1 -p {port} -i {clientId} -c -q 1 -t '{Filter}' -C {count} > /dev/null"));
        var sw = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start mosquitto_sub");
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct).ConfigureAwait(false);
        var seconds = sw.Elapsed.TotalSeconds;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"mosquitto_sub failed ({process.ExitCode}): {await stderr.ConfigureAwait(false)}");
        }

        return seconds;
    }

    // MQTTnet 5's client on a persistent session like the others', same broker, same messages: the handler counts (and,
    // with parsing, parses with the same HfpParser, from the topic string MQTTnet gives, as UTF-8 bytes).
    private static async Task<double> RunMqttnetAsync(int port, string clientId, int count, bool parse, CancellationToken ct)
    {
        var parser = new HfpParser();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var received = 0;
        var now = DateTime.UtcNow;
        var sw = Stopwatch.StartNew();
        using var client = new MQTTnet.MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e =>
        {
            if (parse)
            {
                var message = e.ApplicationMessage;
                var topic = Encoding.UTF8.GetBytes(message.Topic);
                ReadOnlySpan<byte> payload = message.Payload.IsSingleSegment ? message.Payload.FirstSpan : System.Buffers.BuffersExtensions.ToArray(message.Payload);
                parser.TryParse(topic, payload, now, out _, out _);
            }

            if (Interlocked.Increment(ref received) == count)
            {
                done.TrySetResult();
            }

            return Task.CompletedTask;
        };
        var options = new MQTTnet.MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", port)
            .WithClientId(clientId)
            .WithCleanSession(false)
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V311)
            .Build();
        await client.ConnectAsync(options, ct).ConfigureAwait(false);
        await done.Task.WaitAsync(ct).ConfigureAwait(false);
        var seconds = sw.Elapsed.TotalSeconds;
        await client.DisconnectAsync(new MQTTnet.MqttClientDisconnectOptions(), ct).ConfigureAwait(false);
        return seconds;
    }

    private static async Task<(double Seconds, long Parsed, long Rejected)> RunFleetAsync(Uri broker, string clientId, int count, bool parse, CancellationToken ct)
    {
        var parser = new HfpParser();
        var sw = Stopwatch.StartNew();
        await using var client = new MqttClient(new MqttClientOptions { Server = broker, ClientId = clientId, CleanSession = false });
        await client.ConnectAsync(ct).ConfigureAwait(false);
        var reader = client.Messages;
        var received = 0;
        var now = DateTime.UtcNow;
        while (received < count && await reader.WaitToReadAsync(ct).ConfigureAwait(false))
        {
            while (received < count && reader.TryRead(out var m))
            {
                received++;
                if (parse)
                {
                    parser.TryParse(m.TopicUtf8.Span, m.Payload.Span, now, out _, out _);
                }
            }
        }

        var seconds = sw.Elapsed.TotalSeconds;
        return (seconds, parser.Parsed, parser.Rejections.Total);
    }

    /// <summary>The load: HFP messages from a recording, or synthetic HFP v2 VP messages (varied vehicles and positions).</summary>
    private static List<(string Topic, byte[] Payload)> LoadMessages(string? path, int max)
    {
        var load = new List<(string, byte[])>();
        if (path is not null)
        {
            using var reader = RecordingReader.Open(path);
            while (load.Count < max && reader.TryRead(out var line))
            {
                if (line.Kind == RecordKind.Message)
                {
                    load.Add((Encoding.UTF8.GetString(line.Topic), line.Payload.ToArray()));
                }
            }

            if (load.Count == 0)
            {
                throw new InvalidOperationException($"{path} holds no MQTT messages");
            }

            return load;
        }

        var random = new Random(42);
        var t0 = new DateTime(2024, 2, 13, 16, 33, 0, DateTimeKind.Utc);
        for (var i = 0; i < Math.Min(max, 10_000); i++)
        {
            var vehicle = 1000 + (i % 400);
            var route = 1000 + (vehicle % 37);
            var tst = t0.AddSeconds(i / 400).AddMilliseconds(random.Next(1000));
            var lat = 60.15 + (random.NextDouble() * 0.15);
            var lon = 24.75 + (random.NextDouble() * 0.35);
            var topic = string.Create(CultureInfo.InvariantCulture,
                $"/hfp/v2/journey/ongoing/vp/bus/0018/{vehicle:00000}/{route}/1/Keskusta/17:35/4150208/5/60;24/28/65/93");
            var payload = string.Create(CultureInfo.InvariantCulture,
                $$$"""{"VP":{"desi":"{{{route % 1000}}}","dir":"1","oper":18,"veh":{{{vehicle}}},"tst":"{{{tst:yyyy-MM-ddTHH:mm:ss.fffZ}}}","tsi":{{{new DateTimeOffset(tst).ToUnixTimeSeconds()}}},"spd":{{{random.NextDouble() * 15:0.00}}},"hdg":{{{random.Next(360)}}},"lat":{{{lat:0.000000}}},"long":{{{lon:0.000000}}},"acc":{{{(random.NextDouble() * 2) - 1:0.00}}},"dl":{{{random.Next(-300, 120)}}},"odo":{{{random.Next(30000)}}},"drst":0,"oday":"2024-02-13","jrn":{{{random.Next(2000)}}},"line":{{{route % 1000}}},"start":"17:35","loc":"GPS","stop":null,"route":"{{{route}}}","occu":0}}""");
            load.Add((topic, Encoding.UTF8.GetBytes(payload)));
        }

        return load;
    }
}
