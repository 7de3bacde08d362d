using System.Text;
using Fleet.Dashboard.Cli;
using Fleet.Ingest.Recording;
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
    public async Task Record_WhileRecordingIsPublished_WritesSameTopicsAndPayloadsInOrder()
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
        await PublishAsync(expected);
        var exit = await recording.WaitAsync(Timeout, Ct);

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

    private async Task PublishAsync(List<string> messages)
    {
        // The publisher until `fleet replay --to` lands: QoS 1, in file order.
        await using var client = new MqttClient(new MqttClientOptions { Server = _broker.Url });
        await client.ConnectAsync(Ct);
        Task last = Task.CompletedTask;
        foreach (var m in messages)
        {
            var split = m.IndexOf('\n', StringComparison.Ordinal);
            last = await client.EnqueuePublishAsync(m[..split], Encoding.UTF8.GetBytes(m[(split + 1)..]), MqttQos.AtLeastOnce, cancellationToken: Ct);
        }

        await last.WaitAsync(Timeout, Ct);
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
