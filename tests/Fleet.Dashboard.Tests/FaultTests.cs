using System.Globalization;
using System.IO.Compression;
using System.Text;
using Fleet.Dashboard.Sources;
using Fleet.Mqtt;
using Fleet.Testing;

namespace Fleet.Dashboard.Tests;

/// <summary>Whole-pipeline fault tests: a broker restart under a replay, and garbage in the feed.</summary>
[Trait("Category", "Integration")]
public sealed class FaultTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Lines <paramref name="skip"/>+1 .. <paramref name="skip"/>+<paramref name="take"/> of the sample city's recording.</summary>
    private static List<string> SampleSlice(int skip, int take)
    {
        var lines = new List<string>(take);
        using var gz = new GZipStream(File.OpenRead(Path.Combine(RepoPaths.SampleData, "recording.hfp.gz")), CompressionMode.Decompress);
        using var reader = new StreamReader(gz);
        for (var i = 0; i < skip + take && reader.ReadLine() is { } line; i++)
        {
            if (i >= skip)
            {
                lines.Add(line);
            }
        }

        return lines;
    }

    [Fact]
    public async Task ReplayToMqtt_BrokerRestartedMidReplay_SubscriberWithPersistentSessionGetsEveryQos1Message()
    {
        await using var broker = await Mosquitto.StartAsync();
        var dir = Directory.CreateTempSubdirectory("fleet-mqtt-fault-").FullName;
        try
        {
            var lines = SampleSlice(100_000, 20_000);
            var file = Path.Combine(dir, "slice.hfp");
            await File.WriteAllLinesAsync(file, lines, Ct);
            // Expected, counted from the text: every line's "topic payload" (the publisher keeps both as recorded), except
            // the GTFS-RT snapshot lines (topic gtfs-rt/<feed>), which are not MQTT messages and are not published.
            var expected = lines.Select(l => l.Split(' ', 2)[1]).Where(m => !m.StartsWith("gtfs-rt/", StringComparison.Ordinal))
                .ToHashSet(StringComparer.Ordinal);

            await using var subscriber = new MqttClient(new MqttClientOptions
            {
                Server = broker.Url,
                ClientId = "fault-sub",
                CleanSession = false,
                ReconnectMinDelay = TimeSpan.FromMilliseconds(50),
                ReconnectMaxDelay = TimeSpan.FromMilliseconds(400),
            });
            await subscriber.ConnectAsync(Ct);
            await subscriber.SubscribeAsync("#", MqttQos.AtLeastOnce, Ct);

            // Paced (the slice is about 6 minutes of recording: some 3.5 s at speed 100), so that the broker restart
            // below lands while the replay is still publishing however slowly the subscriber reads on a loaded machine.
            using var replay = FleetProcess.Start("replay", file, "--to", broker.Url.ToString().TrimEnd('/'), "--speed", "100", "--report-every", "0.5");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            long received = 0;
            var restarted = false;
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            deadline.CancelAfter(Deadline);
            try
            {
                while (seen.Count < expected.Count)
                {
                    var m = await subscriber.Messages.ReadAsync(deadline.Token);
                    received++;
                    seen.Add(m.Topic + " " + Encoding.UTF8.GetString(m.Payload.Span));
                    if (!restarted && seen.Count >= 1_000 && replay.Output.Contains(" sent ", StringComparison.Ordinal)
                        && !replay.Output.Contains("100%", StringComparison.Ordinal))
                    {
                        // SIGTERM and start again on the same port: mosquitto saves the persistent sessions on the way down.
                        restarted = true;
                        await broker.RestartAsync();
                    }
                }
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !Ct.IsCancellationRequested)
            {
                Assert.Fail($"received {seen.Count} of {expected.Count} distinct messages in {Deadline.TotalSeconds} s; replay output:\n{replay.Output}\nbroker log:\n{broker.Log}");
            }

            Assert.True(restarted);
            Assert.Subset(expected, seen);
            Assert.True(subscriber.Statistics.Reconnects >= 1, "the subscriber never reconnected");
            // The replay reconnected too and finished only when the broker had acknowledged everything.
            await PollAsync(() => replay.HasExited, "fleet replay to exit", Ct);
            Assert.Contains("reconnect", replay.Output, StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task ServeReplay_TenPercentGarbageLines_EveryValidEventProcessedEveryBadLineCountedByReason()
    {
        var dir = Directory.CreateTempSubdirectory("fleet-garbage-").FullName;
        try
        {
            // 2,000 valid HFP lines with 200 bad ones among them (one in eleven lines), 50 of each kind.
            // Valid, counted without our parser: an /hfp/ topic and a payload that is well-formed JSON with a position.
            var valid = SampleSlice(100_000, 2_200).Where(IsValidHfp).Take(2_000).ToList();
            Assert.Equal(2_000, valid.Count);
            var time = valid[0].Split(' ', 2)[0];
            string[] Garbage(int i) => [
                $"this is not a recording line {i}",                                                            // no time, topic or payload
                $"{time} /hfp/v2/journey/ongoing/vp/bus {{\"VP\":{{\"tst\":\"2026-03-02T06:00:00Z\"}}}}",       // topic too short
                $"{time} /hfp/v2/journey/ongoing/vp/bus/0018/00408/1027/1/Niittykumpu/07:01/1003496/1/60;24/19/75/49 {{\"VP\":{{\"desi\":\"27\",",  // JSON cut off
                $"{time} /hfp/v2/journey/ongoing/vp/bus/0018/00408/1027/1/Niittykumpu/07:01/1003496/1/60;24/19/75/49 {{\"VP\":{{\"desi\":\"27\",\"tst\":\"2026-03-02T06:00:00Z\",\"lat\":95.5,\"long\":24.9}}}}", // latitude 95.5
            ];
            var lines = new List<string>();
            for (var i = 0; i < valid.Count; i++)
            {
                lines.Add(valid[i]);
                if (i % 10 == 9)
                {
                    lines.Add(Garbage(i)[(i / 10) % 4]);
                }
            }

            var file = Path.Combine(dir, "garbage.hfp");
            await File.WriteAllLinesAsync(file, lines, Ct);

            await using var host = await TestHost.StartAsync(configure: s => s.AddReplay(new ReplayOptions { Path = file, Speed = ReplayOptions.MaxSpeed }));
            Dictionary<string, double> metrics = [];
            var until = DateTime.UtcNow + Deadline;
            while (metrics.GetValueOrDefault("fleet_replay_parsed_total") + RejectedTotal(metrics) < lines.Count)
            {
                Assert.True(DateTime.UtcNow < until, $"timed out: {string.Join(", ", metrics.Where(m => m.Key.StartsWith("fleet_replay", StringComparison.Ordinal)))}");
                await Task.Delay(50, Ct);
                metrics = ParseMetrics(await host.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative), Ct));
            }

            var reasons = string.Join(", ", metrics.Where(m => m.Key.StartsWith("fleet_replay_rejected_total", StringComparison.Ordinal) && m.Value > 0));
            Assert.True(metrics["fleet_replay_parsed_total"] == 2_000, $"parsed {metrics["fleet_replay_parsed_total"]}; rejected: {reasons}");
            Assert.Equal(2_000, metrics["fleet_events_total"]);
            // Each kind of garbage has its reason: no time, topic or payload -> BadReceiveTime; a short topic -> BadTopic;
            // JSON cut off -> TruncatedLine; latitude 95.5 -> CoordinatesOutOfRange.
            Assert.Equal("BadReceiveTime=50, BadTopic=50, CoordinatesOutOfRange=50, TruncatedLine=50", string.Join(", ", metrics
                .Where(m => m.Key.StartsWith("fleet_replay_rejected_total{", StringComparison.Ordinal) && m.Value > 0)
                .Select(m => $"{m.Key.Split('"')[1]}={m.Value}").Order(StringComparer.Ordinal)));
            Assert.Equal(200, RejectedTotal(metrics));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static bool IsValidHfp(string line)
    {
        var parts = line.Split(' ', 3);
        if (parts.Length < 3 || !parts[1].StartsWith("/hfp/", StringComparison.Ordinal)
            || !DateTime.TryParse(parts[0], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal, out _))
        {
            return false;
        }

        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(parts[2]);
            var body = doc.RootElement.EnumerateObject().First().Value;
            return body.TryGetProperty("lat", out var lat) && lat.ValueKind == System.Text.Json.JsonValueKind.Number
                && body.TryGetProperty("long", out var lon) && lon.ValueKind == System.Text.Json.JsonValueKind.Number;
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }

    private static double RejectedTotal(Dictionary<string, double> metrics) =>
        metrics.Where(m => m.Key.StartsWith("fleet_replay_rejected_total{", StringComparison.Ordinal)).Sum(m => m.Value);

    internal static Dictionary<string, double> ParseMetrics(string text) => PrometheusText.Parse(text);

    private static async Task PollAsync(Func<bool> done, string what, CancellationToken ct)
    {
        var until = DateTime.UtcNow + Deadline;
        while (!done())
        {
            Assert.True(DateTime.UtcNow < until, $"timed out waiting for {what}");
            await Task.Delay(100, ct);
        }
    }
}
