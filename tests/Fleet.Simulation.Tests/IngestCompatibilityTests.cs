using Fleet.Ingest;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
using TransitRealtime;

namespace Fleet.Simulation.Tests;

/// <summary>The generated recording read back with the project's own recording reader and HFP parser.</summary>
public sealed class IngestCompatibilityTests : IClassFixture<GeneratedCityFixture>
{
    private static readonly Dictionary<string, RejectReason[]> ExpectedReasons = new(StringComparer.Ordinal)
    {
        ["truncated-payload"] = [RejectReason.TruncatedLine, RejectReason.BadJson],
        ["topic-too-short"] = [RejectReason.BadTopic],
        ["bad-receive-time"] = [RejectReason.BadReceiveTime],
        ["payload-not-json"] = [RejectReason.BadJson],
        ["missing-payload"] = [RejectReason.TruncatedLine],
    };

    private readonly GeneratedCityFixture _city;

    public IngestCompatibilityTests(GeneratedCityFixture city) => _city = city;

    [Fact]
    public void Recording_ReadByIngest_OnlyTheMalformedLinesRejectedWithTheirReasons()
    {
        var parser = new HfpParser();
        var rejected = new Dictionary<long, RejectReason>();
        long parsed = 0;
        long gtfsRt = 0;
        using (var reader = RecordingReader.Open(_city.Summary.RecordingPath))
        {
            while (reader.TryRead(out var line))
            {
                switch (line.Kind)
                {
                    case RecordKind.Message:
                        if (parser.TryParse(line.Topic, line.Payload, line.ReceiveTime, out var ev, out var reason))
                        {
                            Assert.True(ev.HasPosition, $"line {line.LineNumber} parsed without a position");
                            Assert.NotNull(ev.DelaySeconds);
                            parsed++;
                        }
                        else
                        {
                            rejected[line.LineNumber] = reason;
                        }

                        break;
                    case RecordKind.GtfsRt:
                        Assert.NotEmpty(FeedMessage.Parser.ParseFrom(line.Payload.ToArray()).Header.GtfsRealtimeVersion);
                        gtfsRt++;
                        break;
                    default:
                        rejected[line.LineNumber] = line.Rejection;
                        break;
                }
            }
        }

        Assert.Equal(_city.Summary.Day.HfpMessages, parsed);
        Assert.Equal(_city.Summary.GtfsRtSnapshots, gtfsRt);
        Assert.Equal(_city.Summary.Malformed.Select(m => m.Line).Order(), rejected.Keys.Order());
        foreach (var (lineNumber, kind) in _city.Summary.Malformed)
        {
            Assert.Contains(rejected[lineNumber], ExpectedReasons[kind]);
        }
    }
}
