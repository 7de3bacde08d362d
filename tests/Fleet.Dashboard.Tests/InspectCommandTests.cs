using System.Text.Json;
using Fleet.Dashboard.Cli;
using Fleet.Ingest.Recording;

namespace Fleet.Dashboard.Tests;

public sealed class InspectCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("fleet-inspect-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task InspectJson_MixedRecording_PrintsOneObjectWithEveryFigure()
    {
        var path = Path.Combine(_dir, "mixed.hfp.gz");
        var t0 = new DateTime(2024, 2, 13, 16, 33, 0, DateTimeKind.Utc);
        using (var w = RecordingWriter.Create(path))
        {
            w.Write(t0, "/hfp/v2/journey/ongoing/vp/bus/0018/01029/5520/1/Martinlaakso/17:35/4150208/5/60;24/28/65/93",
                """{"VP":{"tst":"2024-02-13T16:32:59.931Z","lat":60.269247,"long":24.853777,"dl":-232}}"""u8);
            w.Write(t0.AddSeconds(1), "/hfp/v2/journey/ongoing/vp/bus/0018/01029", """{"VP":{"tst":"2024-02-13T16:33:00Z","lat":null,"long":null}}"""u8);
            w.Write(t0.AddSeconds(2), "/hfp/v2/journey/ongoing/doo/bus/0012/01913", """{"DOO":{"tst":"2024-02-13T16:33:01Z","lat":60.1,"long":24.9}}"""u8);
            w.Write(t0.AddSeconds(3), "/hfp/v2/journey/ongoing/vp/bus/0012/01913", """{"VP":{"tst":"2024-02-13T16:33:02Z","lat":99.0,"long":24.9}}"""u8);
            w.Write(t0.AddSeconds(4), "/hfp/v2/journey/ongoing/vp/bus/0012/01913", """{"VP":{"tst":"2024-02-13T"""u8);
            w.WriteGtfsRt(t0.AddSeconds(5), "sample", [0x0a, 0x02, 0x08, 0x01]);
        }

        var output = new StringWriter();
        var exit = await InspectCommand.InspectFileAsync(path, json: true, output, TestContext.Current.CancellationToken);

        Assert.Equal(0, exit);
        var text = output.ToString().Trim();
        Assert.DoesNotContain('\n', text); // exactly one object on one line
        using var doc = JsonDocument.Parse(text);
        var root = doc.RootElement;
        Assert.Equal("hfp", root.GetProperty("kind").GetString());
        Assert.Equal(5, root.GetProperty("messages").GetInt64());
        Assert.Equal(3, root.GetProperty("parsed").GetInt64());
        Assert.Equal(1, root.GetProperty("rejected").GetProperty("CoordinatesOutOfRange").GetInt64());
        Assert.Equal(1, root.GetProperty("rejected").GetProperty("TruncatedLine").GetInt64());
        Assert.Equal(2, root.GetProperty("rejected").EnumerateObject().Count());
        Assert.Equal(2, root.GetProperty("vehicles").GetInt64());
        Assert.Equal(2, root.GetProperty("eventTypes").GetProperty("VP").GetInt64());
        Assert.Equal(1, root.GetProperty("eventTypes").GetProperty("DOO").GetInt64());
        Assert.Equal("2024-02-13T16:33:00.000000Z", root.GetProperty("first").GetString());
        Assert.Equal("2024-02-13T16:33:05.000000Z", root.GetProperty("last").GetString());
        Assert.Equal(1, root.GetProperty("gtfsRtSnapshots").GetInt64());
        Assert.Equal(1, root.GetProperty("noPosition").GetInt64());
    }

    [Fact]
    public async Task InspectJson_PlainHfpRecording_HasNoGtfsRtField()
    {
        var path = Path.Combine(_dir, "plain.txt");
        await File.WriteAllTextAsync(path,
            "2024-02-13T16:33:00.005271Z /hfp/v2/journey/ongoing/vp/bus/0018/01029 {\"VP\":{\"tst\":\"2024-02-13T16:32:59.931Z\",\"lat\":60.2,\"long\":24.8}}\n",
            TestContext.Current.CancellationToken);
        var output = new StringWriter();

        Assert.Equal(0, await InspectCommand.InspectFileAsync(path, json: true, output, TestContext.Current.CancellationToken));

        using var doc = JsonDocument.Parse(output.ToString());
        Assert.False(doc.RootElement.TryGetProperty("gtfsRtSnapshots", out _));
        Assert.Equal(1, doc.RootElement.GetProperty("parsed").GetInt64());
        Assert.Empty(doc.RootElement.GetProperty("rejected").EnumerateObject());
    }

    [Fact]
    public async Task Inspect_MissingFile_ExitsNonZero()
    {
        var exit = await InspectCommand.InspectFileAsync(Path.Combine(_dir, "nope.txt"), json: true, new StringWriter(), TestContext.Current.CancellationToken);
        Assert.Equal(2, exit);
    }
}
