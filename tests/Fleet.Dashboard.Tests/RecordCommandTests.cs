using System.Text;
using Fleet.Dashboard.Cli;
using Fleet.Ingest.Recording;
using Fleet.Ingest.Replay;
using Fleet.Mqtt;
using Fleet.Testing;

namespace Fleet.Dashboard.Tests;

/// <summary>A writer for the command's progress that signals once a line containing a marker was written.</summary>
internal sealed class SignallingWriter(string marker) : StringWriter
{
    private readonly TaskCompletionSource _seen = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Seen => _seen.Task;

    public override Task WriteLineAsync(string? value)
    {
        Check(value);
        return base.WriteLineAsync(value);
    }

    public override Task WriteAsync(string? value)
    {
        Check(value);
        return base.WriteAsync(value);
    }

    private void Check(string? value)
    {
        if (value?.Contains(marker, StringComparison.Ordinal) == true)
        {
            _seen.TrySetResult();
        }
    }
}

[Trait("Category", "Integration")]
public sealed class RecordCommandTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("fleet-record-").FullName;
    private Mosquitto _broker = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _broker = await Mosquitto.StartAsync();

    public async ValueTask DisposeAsync()
    {
        await _broker.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Record_WhileReplayPublishesToBroker_WritesSameTopicsAndPayloadsInOrder()
    {
        // 5000 HFP v1 messages of 1460 vehicles: topics with spaces and non-ASCII headsigns (see PROVENANCE.md).
        var source = SharedData.RequireFile("hfp/hfp-v1_2018-10-09_fleet-snapshot_5000msgs.txt");
        var expected = ReadMessages(source);
        Assert.Equal(5000, expected.Count); // PROVENANCE.md: 5000 VP messages
        var output = Path.Combine(_dir, "recorded.txt.gz");
        var progress = new SignallingWriter("fleet record: recording");

        var recording = RecordCommand.RunAsync(
            new RecordCommand.RecordSettings(_broker.Url.ToString(), ["/hfp/#"], output, Timeout, expected.Count, null, null, 1, null, null),
            Ct, progress);
        await progress.Seen.WaitAsync(Timeout, Ct);
        var replayStatus = new StringWriter();
        var replayExit = await ReplayToBrokerAsync(source, replayStatus).WaitAsync(Timeout, Ct);
        var exit = await recording.WaitAsync(Timeout, Ct);

        Assert.True(replayExit == 0, replayStatus.ToString());
        Assert.Contains("published 5,000", replayStatus.ToString(), StringComparison.Ordinal);

        Assert.True(exit == 0, progress.ToString());
        var recorded = ReadMessages(output);
        Assert.Equal(expected.Count, recorded.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.True(expected[i] == recorded[i], $"message {i + 1}: expected\n{expected[i]}\ngot\n{recorded[i]}");
        }

        Assert.Contains($"wrote {expected.Count:N0} messages", progress.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Record_WrongPassword_ExitsWithNamedReason()
    {
        await using var secured = await Mosquitto.StartAsync(new MosquittoOptions { Users = new Dictionary<string, string> { ["u"] = "right" } });
        var progress = new StringWriter();

        var exit = await RecordCommand.RunAsync(
            new RecordCommand.RecordSettings(secured.Url.ToString(), ["#"], Path.Combine(_dir, "x.txt"), null, null, "u", "wrong", 1, null, null),
            Ct, progress);

        Assert.Equal(1, exit);
        Assert.Contains("not authorized", progress.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("90s", 90)]
    [InlineData("10m", 600)]
    [InlineData("2h", 7200)]
    [InlineData("45", 45)]
    [InlineData("00:10:00", 600)]
    public void TryParseDuration_Forms_Parse(string text, int seconds)
    {
        Assert.True(RecordCommand.TryParseDuration(text, out var value));
        Assert.Equal(TimeSpan.FromSeconds(seconds), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("ten minutes")]
    [InlineData("-5m")]
    [InlineData("5x")]
    public void TryParseDuration_Garbage_Fails(string text)
    {
        Assert.False(RecordCommand.TryParseDuration(text, out _));
    }

    [Fact]
    public async Task Replay_ToBrokerThatRefusesUs_ExitsWithNamedReason()
    {
        await using var secured = await Mosquitto.StartAsync(new MosquittoOptions { Users = new Dictionary<string, string> { ["u"] = "right" } });
        var path = Path.Combine(_dir, "one.txt");
        await File.WriteAllTextAsync(path, "2024-02-13T16:33:00.005271Z /hfp/v2/x {\"VP\":{}}\n", Ct);
        using var logging = CliLogging.CreateFactory(Microsoft.Extensions.Logging.LogLevel.Warning);
        await using var target = new MqttReplayTarget(new MqttClientOptions { Server = secured.Url }, MqttQos.AtLeastOnce, logging);

        var ex = await Assert.ThrowsAsync<MqttConnectException>(() => target.ConnectAsync(Ct));

        Assert.Contains("not authorized", ex.Message, StringComparison.Ordinal);
    }

    /// <summary><c>fleet replay FILE --speed max --to URL</c>, as the command runs it.</summary>
    private async Task<int> ReplayToBrokerAsync(string file, StringWriter status)
    {
        using var logging = CliLogging.CreateFactory(Microsoft.Extensions.Logging.LogLevel.Warning);
        await using var target = new MqttReplayTarget(new MqttClientOptions { Server = _broker.Url }, MqttQos.AtLeastOnce, logging);
        await target.ConnectAsync(Ct);
        var settings = new ReplayCommand.ReplaySettings([file], new ReplayOptions { Speed = ReplayOptions.MaxSpeed }, TimeSpan.FromSeconds(10))
        {
            ProgressBar = false,
            StatusLine = line => status.WriteLine(line),
        };
        return await ReplayCommand.RunAsync(settings, target, logging, Ct);
    }

    /// <summary>Topic and payload of every message line, joined by a newline (which neither can contain).</summary>
    private static List<string> ReadMessages(string path)
    {
        var list = new List<string>();
        using var reader = RecordingReader.Open(path);
        while (reader.TryRead(out var line))
        {
            Assert.Equal(RecordKind.Message, line.Kind);
            list.Add(Encoding.UTF8.GetString(line.Topic) + "\n" + Encoding.UTF8.GetString(line.Payload));
        }

        return list;
    }
}
