using System.Globalization;
using System.Text;
using Fleet.Ingest;
using Fleet.Ingest.Events;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
using Fleet.Ingest.Text;
using Fleet.Testing;

namespace Fleet.Ingest.Tests;

/// <summary>
/// The parser's hand-written scanner for flat payloads and its <c>Utf8JsonReader</c> path agree on every message:
/// the same event or the same rejection reason.
/// </summary>
public sealed class HfpFastPathTests
{
    [Fact]
    public void FastAndReaderPaths_SampleCityRecording_GiveIdenticalEvents()
    {
        var (messages, acceptedNotScanned) = CompareFile(Path.Combine(RepoPaths.SampleData, "recording.hfp.gz"), limit: 40_000);
        Assert.Equal(40_000, messages);
        // The generated city writes flat ASCII payloads: the scanner must read every valid one itself.
        Assert.Equal(0, acceptedNotScanned);
    }

    [Theory]
    [InlineData("hfp-v1_2018-10-09_fleet-snapshot_5000msgs.txt")]
    [InlineData("hfp-v2_2024-02-13_bus-0018-01029_route5520.txt")]
    [InlineData("hfp-v2_2023-10-29_bus-0018-00679_route1064.txt")]
    public void FastAndReaderPaths_RealHslFile_GiveIdenticalEvents(string file)
    {
        var (messages, acceptedNotScanned) = CompareFile(SharedData.RequireFile(Path.Combine("hfp", file)));
        Assert.True(messages > 0);
        Assert.Equal(0, acceptedNotScanned);
    }

    [Theory]
    [InlineData("""{"VP":{"tst":"2024-02-13T16:32:59.931Z","lat":60.1,"long":24.9,"x":{"a":[1,2]}}}""")]
    [InlineData("""{"VP":{"tst":"2024-02-13T16:32:59.931Z","lat":60.1,"long":24.9,"stop":"12\u00e434"}}""")]
    [InlineData("""{"VP":{"tst":"2024-02-13T16:32:59.931Z","lat":60.1,"long":24.9,"flag":true}}""")]
    [InlineData("""{"VP":{"tst":"2024-02-13T16:32:59.931Z","lat":60.1,"long":24.9""")]
    [InlineData("""{"VP":{"tst":"2024-02-13T16:32:59.931Z","lat":60.1,"long":24.9}} x""")]
    [InlineData("""{"VP":{"tst":"2024-02-13T16:32:59.931Z","lat":060.1,"long":24.9}}""")]
    [InlineData("""{"VP":{"tst":"2024-02-13T16:32:59.931Z","lat":60.1x,"long":24.9}}""")]
    [InlineData("""{"VP":{"tst":"2024-02-13T16:32:59.931Z","lat":{},"long":24.9}}""")]
    [InlineData("""{"VP":{"tst":"2024-02-13T16:32:59.931Z","lat":6.01e1,"long":-24.9E0,"dl":"-1.0"}}""")]
    [InlineData("""{"XYZ":{"tst":"2024-02-13T16:32:59.931Z"}}""")]
    [InlineData("""{"VP":{}}""")]
    [InlineData(""" { "VP" : { "tst" : "2024-02-13T16:32:59.931Z" , "lat" : null , "long" : null } } """)]
    public void FastAndReaderPaths_UnusualPayloads_GiveTheSameOutcome(string payload)
    {
        var topic = "/hfp/v2/journey/ongoing/vp/bus/0018/01029/5520/1/Martinlaakso/17:35/4150208/5/60;24/28/65/93"u8.ToArray();
        var bytes = Encoding.UTF8.GetBytes(payload);
        var fast = new HfpParser();
        var reader = new HfpParser(options: new HfpParserOptions { FastPath = false });
        var fastOk = fast.TryParse(topic, bytes, DateTime.UnixEpoch, out var fastEvent, out var fastReason);
        var readerOk = reader.TryParse(topic, bytes, DateTime.UnixEpoch, out var readerEvent, out var readerReason);
        Assert.Equal(readerOk, fastOk);
        Assert.Equal(readerReason, fastReason);
        Assert.Equal(readerEvent, fastEvent);
    }

    [Fact]
    public void ParseDouble_RandomDecimals_EqualDoubleParse()
    {
        // Clinger's fast path must round exactly as the runtime's correctly rounded parser does.
        var random = new Random(7);
        for (var n = 0; n < 200_000; n++)
        {
            var digits = random.Next(1, 16);
            var mantissa = (long)(random.NextDouble() * Math.Pow(10, digits));
            var scale = random.Next(0, digits + 1);
            var text = mantissa.ToString(CultureInfo.InvariantCulture).PadLeft(scale + 1, '0');
            if (scale > 0)
            {
                text = text[..^scale] + "." + text[^scale..];
            }

            if (random.Next(2) == 0)
            {
                text = "-" + text;
            }

            Assert.True(Utf8Decimal.TryParse(Encoding.ASCII.GetBytes(text), out var parsed), text);
            Assert.Equal(double.Parse(text, CultureInfo.InvariantCulture), parsed);
        }
    }

    // Returns the messages compared and how many the reader accepted that the scanner handed over to it.
    private static (int Messages, int AcceptedNotScanned) CompareFile(string path, int limit = int.MaxValue)
    {
        var fast = new HfpParser();
        var reader = new HfpParser(options: new HfpParserOptions { FastPath = false });
        int messages = 0, acceptedNotScanned = 0;
        using var recording = RecordingReader.Open(path);
        while (messages < limit && recording.TryRead(out var line))
        {
            if (line.Kind != RecordKind.Message)
            {
                continue;
            }

            messages++;
            var scannedBefore = fast.FastPathTaken;
            var fastOk = fast.TryParse(line.Topic, line.Payload, line.ReceiveTime, out var fastEvent, out var fastReason);
            var readerOk = reader.TryParse(line.Topic, line.Payload, line.ReceiveTime, out var readerEvent, out var readerReason);
            Assert.True(readerOk == fastOk && readerReason == fastReason, $"{path}:{line.LineNumber}: scanner {fastReason}, reader {readerReason}");
            Assert.Equal(readerEvent, fastEvent);
            if (readerOk && fast.FastPathTaken == scannedBefore)
            {
                acceptedNotScanned++;
            }
        }

        return (messages, acceptedNotScanned);
    }
}
