using System.IO.Compression;
using System.Text;
using Fleet.Ingest.Recording;
using Fleet.Ingest.Text;

namespace Fleet.Ingest.Tests;

public sealed class RecordingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("fleet-recording-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static List<(RecordKind Kind, DateTime Time, string Topic, byte[] Payload, RejectReason Reason)> ReadAll(RecordingReader reader)
    {
        var lines = new List<(RecordKind, DateTime, string, byte[], RejectReason)>();
        while (reader.TryRead(out var l))
        {
            lines.Add((l.Kind, l.ReceiveTime, Encoding.UTF8.GetString(l.Topic), l.Payload.ToArray(), l.Rejection));
        }

        return lines;
    }

    private static RecordingReader FromText(string text, int maxLine = RecordingReader.DefaultMaxLineBytes) =>
        new(new MemoryStream(Encoding.UTF8.GetBytes(text)), "test", maxLine);

    [Theory]
    [InlineData("rec.txt")]
    [InlineData("rec.txt.gz")]
    public void WriteThenRead_RoundTripsTopicsPayloadsAndTimes(string name)
    {
        var path = Path.Combine(_dir, name);
        var t0 = new DateTime(2024, 2, 13, 16, 33, 0, 5, DateTimeKind.Utc).AddTicks(2710);
        var protobuf = new byte[] { 0x0a, 0x00, 0xff, 0x10, 0x0a };
        using (var w = RecordingWriter.Create(path))
        {
            w.Write(t0, "/hfp/v2/journey/ongoing/vp/bus/0018/01029/5520/2/Matinkylä (M)/18:48/4170215/0/60;24/28/75/72", """{"VP":{"tst":"x"}}"""u8);
            w.WriteGtfsRt(t0.AddSeconds(1), "sample", protobuf);
            w.Write(t0.AddSeconds(2), "/hfp/v1/deadrun/ongoing/bus/0018/00436"u8, "{\"VP\":\r\n{}}"u8);
            Assert.Equal(3, w.MessagesWritten);
        }

        using (var f = File.OpenRead(path))
        {
            Assert.Equal(name.EndsWith(".gz", StringComparison.Ordinal), RecordingReader.IsGzip(f));
        }

        using var reader = RecordingReader.Open(path);
        var lines = ReadAll(reader);

        Assert.Equal(3, lines.Count);
        Assert.Equal((RecordKind.Message, t0, "/hfp/v2/journey/ongoing/vp/bus/0018/01029/5520/2/Matinkylä (M)/18:48/4170215/0/60;24/28/75/72"), (lines[0].Kind, lines[0].Time, lines[0].Topic));
        Assert.Equal("""{"VP":{"tst":"x"}}""", Encoding.UTF8.GetString(lines[0].Payload));
        Assert.Equal((RecordKind.GtfsRt, t0.AddSeconds(1), "gtfs-rt/sample"), (lines[1].Kind, lines[1].Time, lines[1].Topic));
        Assert.Equal(protobuf, lines[1].Payload);
        Assert.Equal("{\"VP\":  {}}", Encoding.UTF8.GetString(lines[2].Payload));
    }

    [Fact]
    public void Write_TimeFormat_IsMicrosecondsUtcLikeHslDumps()
    {
        var buffer = new MemoryStream();
        using (var w = new RecordingWriter(buffer, gzip: false, leaveOpen: true))
        {
            w.Write(new DateTime(2023, 10, 29, 13, 24, 10, 275, DateTimeKind.Utc).AddTicks(3060), "/hfp/v2/x", "{}"u8);
        }

        Assert.Equal("2023-10-29T13:24:10.275306Z /hfp/v2/x {}\n", Encoding.UTF8.GetString(buffer.ToArray()));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a\nb")]
    [InlineData("a {b")]
    [InlineData("gtfs-rt/x")]
    public void Write_TopicThatWouldBreakTheLineFormat_Throws(string topic)
    {
        using var w = new RecordingWriter(new MemoryStream(), gzip: false);
        Assert.Throws<ArgumentException>(() => w.Write(DateTime.UtcNow, topic, "{}"u8));
    }

    [Fact]
    public void Write_NonJsonPayload_Throws()
    {
        using var w = new RecordingWriter(new MemoryStream(), gzip: false);
        Assert.Throws<ArgumentException>(() => w.Write(DateTime.UtcNow, "/hfp/v2/x", "hello"u8));
    }

    [Fact]
    public void Read_HeadsignWithSpacesAndBraces_SplitsOnFirstSpaceBrace()
    {
        using var r = FromText("2018-10-09T04:32:52.549043+0000 /hfp/v1/journey/ongoing/bus/0017/00031/1090/2/Vuosaari (M)/07:29 {\"VP\":{\"a\":\" {\"}}\n");
        var line = Assert.Single(ReadAll(r));
        Assert.Equal(RecordKind.Message, line.Kind);
        Assert.Equal("/hfp/v1/journey/ongoing/bus/0017/00031/1090/2/Vuosaari (M)/07:29", line.Topic);
        Assert.Equal(new DateTime(2018, 10, 9, 4, 32, 52, 549, DateTimeKind.Utc).AddTicks(430), line.Time);
    }

    [Fact]
    public void Read_MalformedLines_AreReportedWithReasonsAndReadingGoesOn()
    {
        var text = string.Join("\n",
            "2024-02-13T16:33:00Z /hfp/v2/a {\"VP\":{}}",
            "yesterday /hfp/v2/a {\"VP\":{}}",
            "2024-02-13T16:33:01Z /hfp/v2/a",
            "   ",
            "2024-02-13T16:33:02Z gtfs-rt/feed !!notbase64!!",
            "2024-02-13T16:33:03Z " + new string('x', 300) + " {}",
            "2024-02-13T16:33:04Z /hfp/v2/b {\"VP\":{}}\r",
            "2024-02-13T16:33:05Z /hfp/v2/c {\"VP\":{}}");
        using var r = FromText(text, maxLine: 200);

        var lines = ReadAll(r);

        Assert.Equal(
            [RejectReason.None, RejectReason.BadReceiveTime, RejectReason.TruncatedLine, RejectReason.BadBase64, RejectReason.Oversized, RejectReason.None, RejectReason.None],
            lines.Select(l => l.Reason));
        Assert.Equal("/hfp/v2/b", lines[5].Topic);
        Assert.Equal("{\"VP\":{}}", Encoding.UTF8.GetString(lines[5].Payload));
        Assert.Equal("/hfp/v2/c", lines[6].Topic); // last line without a newline
        Assert.Equal(8, r.LineNumber);
    }

    [Fact]
    public void Read_OversizedLineLongerThanTheBuffer_IsSkippedWithoutBufferingIt()
    {
        var text = "2024-02-13T16:33:00Z /a {\"" + new string('x', 200_000) + "\"}\n2024-02-13T16:33:01Z /b {}\n";
        using var r = FromText(text, maxLine: 1000);
        var lines = ReadAll(r);
        Assert.Equal([RejectReason.Oversized, RejectReason.None], lines.Select(l => l.Reason));
        Assert.Equal("/b", lines[1].Topic);
    }

    [Fact]
    public void Read_LinesSpanningManyBufferFills_AreAllReturnedIntact()
    {
        var sb = new StringBuilder();
        for (var i = 0; i < 5000; i++)
        {
            sb.Append(Iso8601.ToIsoString(new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddSeconds(i)))
              .Append(" /hfp/v2/t/").Append(i).Append(" {\"n\":").Append(i).Append(",\"pad\":\"").Append('p', i % 97).Append("\"}\n");
        }

        var gz = new MemoryStream();
        using (var z = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true))
        {
            z.Write(Encoding.UTF8.GetBytes(sb.ToString()));
        }

        gz.Position = 0;
        using var r = new RecordingReader(new GZipStream(gz, CompressionMode.Decompress), "gz");
        var lines = ReadAll(r);
        Assert.Equal(5000, lines.Count);
        for (var i = 0; i < lines.Count; i++)
        {
            Assert.Equal($"/hfp/v2/t/{i}", lines[i].Topic);
            Assert.StartsWith($"{{\"n\":{i},", Encoding.UTF8.GetString(lines[i].Payload), StringComparison.Ordinal);
        }
    }
}
