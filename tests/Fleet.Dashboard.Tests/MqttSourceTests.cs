using System.Text;
using System.Text.Json;
using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.Sources;
using Fleet.Ingest.Recording;
using Fleet.Mqtt;
using Fleet.Testing;

namespace Fleet.Dashboard.Tests;

/// <summary><c>fleet serve --mqtt</c> against a real mosquitto broker, on real Kestrel.</summary>
[Trait("Category", "Integration")]
public sealed class MqttSourceTests
{
    private const string Topic = "/hfp/v2/journey/ongoing/#";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly Lazy<GtfsNetwork> s_network = new(() => GtfsNetwork.Load(Path.Combine(RepoPaths.SampleData, "gtfs.zip")));

    // The first HFP lines of the sample city's recording (GTFS-RT lines left out), as the broker would carry them.
    private static List<(string Topic, byte[] Payload)> SampleSlice(int count)
    {
        var slice = new List<(string, byte[])>(count);
        using var reader = RecordingReader.Open(Path.Combine(RepoPaths.SampleData, "recording.hfp.gz"));
        while (slice.Count < count && reader.TryRead(out var line))
        {
            if (line.Kind == RecordKind.Message)
            {
                slice.Add((Encoding.UTF8.GetString(line.Topic), line.Payload.ToArray()));
            }
        }

        return slice;
    }

    // Vehicles with at least one position in the slice, counted from the raw text: an HFP v2 topic is
    // /hfp/v2/journey/ongoing/<event>/<mode>/<operator>/<vehicle>/..., and a position payload has a numeric "lat".
    private static SortedSet<string> VehiclesWithPositions(IEnumerable<(string Topic, byte[] Payload)> slice)
    {
        var ids = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (topic, payload) in slice)
        {
            var levels = topic.Split('/');
            if (levels[5] == "vp" && Encoding.UTF8.GetString(payload).Contains("\"lat\":6", StringComparison.Ordinal))
            {
                ids.Add($"{levels[7]}/{levels[8]}");
            }
        }

        return ids;
    }

    private static async Task PublishAsync(Uri broker, IEnumerable<(string Topic, byte[] Payload)> messages, string? user = null, string? password = null)
    {
        await using var publisher = new MqttClient(new MqttClientOptions { Server = broker, UserName = user, Password = password });
        await publisher.ConnectAsync(Ct);
        foreach (var (topic, payload) in messages)
        {
            await publisher.EnqueuePublishAsync(topic, payload, MqttQos.AtLeastOnce, cancellationToken: Ct);
        }

        await publisher.WhenAllAcknowledgedAsync(Ct);
        await publisher.DisconnectAsync();
    }

    private static JsonElement MqttSourceOf(JsonElement health) =>
        Assert.Single(health.GetProperty("sources").EnumerateArray(), s => s.GetProperty("kind").GetString() == "mqtt");

    // Polls /api/health until the MQTT source satisfies a condition (the broker and the host are separate processes
    // and threads; a deadline with a message naming what was awaited).
    private static async Task<JsonElement> AwaitSourceAsync(TestHost host, Func<JsonElement, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var source = MqttSourceOf(await host.GetJsonAsync("api/health"));
            if (condition(source))
            {
                return source;
            }

            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for the MQTT source to be {what}; last: {source}");
            await Task.Delay(50, Ct);
        }
    }

    [Fact]
    public async Task Mqtt_SampleHfpThroughBroker_VehiclesAppearAndRejectionsCountedByReason()
    {
        // A password with characters that must be percent-encoded in the URL.
        const string User = "fleet";
        const string Password = "p@ss:w/rd";
        await using var broker = await Mosquitto.StartAsync(new MosquittoOptions { Users = new Dictionary<string, string> { [User] = Password } });
        var url = $"mqtt://{User}:{Uri.EscapeDataString(Password)}@127.0.0.1:{broker.Port}";
        await using var host = await TestHost.StartAsync(
            network: s_network.Value, configure: s => s.AddMqttSource(MqttSourceOptions.Parse(url, [Topic])));
        await AwaitSourceAsync(host, s => s.GetProperty("state").GetString() == "connected", "connected");

        var slice = SampleSlice(3000);
        var expected = VehiclesWithPositions(slice);
        // Two bad messages on subscribed topics: a payload that is not JSON, and a topic cut short of the vehicle.
        List<(string, byte[])> bad =
        [
            (slice[0].Topic, "<VP tst=\"now\"/>"u8.ToArray()),
            ("/hfp/v2/journey/ongoing/vp/bus", slice[0].Payload),
        ];
        await PublishAsync(broker.Url, [.. slice.Take(1500), .. bad, .. slice.Skip(1500)], User, Password);

        var source = await AwaitSourceAsync(host, s => s.GetProperty("events").GetInt64() >= slice.Count, $"at {slice.Count} events");
        var vehicles = (await host.GetJsonAsync("api/vehicles")).EnumerateArray().Select(v => v.GetProperty("id").GetString()!).ToHashSet();
        var metrics = await host.Http.GetStringAsync(new Uri("metrics", UriKind.Relative), Ct);

        Assert.NotEmpty(expected);
        Assert.Equal(expected, new SortedSet<string>(vehicles, StringComparer.Ordinal));
        Assert.Equal(slice.Count, source.GetProperty("events").GetInt64());
        Assert.Equal($"mqtt:127.0.0.1:{broker.Port}", source.GetProperty("name").GetString());
        var rejected = source.GetProperty("rejected");
        Assert.True(rejected.EnumerateObject().Count() == 2, $"rejected: {rejected}");
        Assert.Equal(1, rejected.GetProperty("BadJson").GetInt64());
        Assert.Equal(1, rejected.GetProperty("BadTopic").GetInt64());
        Assert.Equal(2, rejected.EnumerateObject().Count());
        var samples = PrometheusText.Parse(metrics);
        Assert.Equal(1, samples[$"fleet_source_rejected_total{{kind=\"mqtt\",reason=\"BadJson\",source=\"mqtt:127.0.0.1:{broker.Port}\"}}"]);
        Assert.Equal(1, samples[$"fleet_source_connected{{kind=\"mqtt\",source=\"mqtt:127.0.0.1:{broker.Port}\"}}"]);
        Assert.DoesNotContain(Uri.EscapeDataString(Password), metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Mqtt_BrokerRestarts_SourceReconnectsAndReceivesAgain()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var host = await TestHost.StartAsync(configure: s => s.AddMqttSource(MqttSourceOptions.Parse(broker.Url.ToString(), [Topic])));
        await AwaitSourceAsync(host, s => s.GetProperty("state").GetString() == "connected", "connected");
        var slice = SampleSlice(200);
        await PublishAsync(broker.Url, slice.Take(100));
        await AwaitSourceAsync(host, s => s.GetProperty("events").GetInt64() == 100, "at 100 events");

        await broker.StopAsync();
        await AwaitSourceAsync(host, s => s.GetProperty("state").GetString() != "connected", "disconnected after the broker stopped");
        await broker.StartAgainAsync();
        await AwaitSourceAsync(host, s => s.GetProperty("state").GetString() == "connected", "connected again after the broker restarted");
        await PublishAsync(broker.Url, slice.Skip(100));

        var source = await AwaitSourceAsync(host, s => s.GetProperty("events").GetInt64() == 200, "at 200 events after the restart");
        Assert.True(source.GetProperty("connected").GetBoolean());
    }

    [Fact]
    public async Task Mqtt_WrongPassword_RetriesWithBackoffAndReportsTheError()
    {
        await using var broker = await Mosquitto.StartAsync(new MosquittoOptions { Users = new Dictionary<string, string> { ["fleet"] = "right" } });
        var options = MqttSourceOptions.Parse($"mqtt://fleet:wrong@127.0.0.1:{broker.Port}", [Topic]) with { MinBackoff = TimeSpan.FromMilliseconds(50) };
        await using var host = await TestHost.StartAsync(configure: s => s.AddMqttSource(options));

        var source = await AwaitSourceAsync(host, s => s.GetProperty("failures").GetInt64() >= 2, "failed twice");

        Assert.False(source.GetProperty("connected").GetBoolean());
        Assert.False(string.IsNullOrEmpty(source.GetProperty("lastError").GetString()));
    }

    [Fact]
    public void Parse_UrlWithCredentials_SplitsThemOffTheServer()
    {
        var o = MqttSourceOptions.Parse("mqtts://user%40x:p%3Ass@broker.example:8884", []);

        Assert.Equal("user@x", o.UserName);
        Assert.Equal("p:ss", o.Password);
        Assert.Equal("mqtts://broker.example:8884/", o.Server.ToString());
        Assert.Equal("mqtt:broker.example:8884", o.Name);
        Assert.Equal([MqttSourceOptions.DefaultTopic], o.Topics);
    }

    [Theory]
    [InlineData("http://broker:1883")]
    [InlineData("broker:1883")]
    public void Parse_NotAnMqttUrl_Throws(string url) =>
        Assert.Throws<ArgumentException>(() => MqttSourceOptions.Parse(url, []));

    [Fact]
    public void Parse_BadTopicFilter_Throws() =>
        Assert.ThrowsAny<ArgumentException>(() => MqttSourceOptions.Parse("mqtt://broker", ["/hfp/#/vp"]));

    [Fact]
    public void ServeCommand_TopicsAfterEachMqtt_BelongToThatBroker()
    {
        var command = Cli.ServeCommand.Create();
        var parse = command.Parse(["--topic", "/all/#", "--mqtt", "mqtt://a", "--topic", "/a/#", "--mqtt", "mqtt://b:1884"]);

        var brokers = Cli.ServeSources.Brokers(parse);

        Assert.Equal(2, brokers.Count);
        Assert.Equal(["/all/#", "/a/#"], brokers[0].Topics);
        Assert.Equal(["/all/#"], brokers[1].Topics);
        Assert.Equal("mqtt:b:1884", brokers[1].Name);
    }
}
