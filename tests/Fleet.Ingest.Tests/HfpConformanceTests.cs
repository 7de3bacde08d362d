using Fleet.Ingest.Events;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
using Fleet.Testing;

namespace Fleet.Ingest.Tests;

/// <summary>
/// Every line of every real HFP file in ../shared/data/hfp (HSL open data, see its PROVENANCE.md) parses or is
/// rejected with a named reason, and the per-event-type counts match figures counted independently.
/// </summary>
public sealed class HfpConformanceTests
{
    // Expected counts were taken with grep, not with our parser, when this test was written:
    //   grep -c '' FILE                       (lines; every line is one message)
    //   grep -c ' {"VP":{' FILE               (and likewise DUE, ARR, ..., VJOUT, APC)
    //   grep -c '"lat":null' FILE             (explicit no-fix messages: parsed, without a position)
    // The v1 and 2024-02-13 figures agree with PROVENANCE.md (5000 VP; VP 1013, TLR 8, DEP 2, DOO 2, DOC 2, ...).
    public static TheoryData<string, int, string, int, int> Files => new()
    {
        { "hfp-v1_2018-10-09_fleet-snapshot_5000msgs.txt", 5000, "VP=5000", 146, 1460 },
        { "hfp-v2_2023-10-29_bus-0012-01913_route4400.txt", 14, "VP=6 DUE=2 ARR=1 ARS=1 DEP=1 PDE=1 DOO=1 DOC=1", 0, 1 },
        { "hfp-v2_2023-10-29_bus-0018-00679_route1064.txt", 35, "VP=16 DUE=3 ARR=2 ARS=2 DEP=2 PDE=2 WAIT=4 DOO=1 DOC=1 VJA=1 VJOUT=1", 0, 1 },
        { "hfp-v2_2023-10-29_bus-0018-00679_routes1061-1066.txt", 38, "VP=20 DUE=3 ARR=2 ARS=2 DEP=2 PDE=2 WAIT=1 DOO=2 DOC=2 VJA=1 VJOUT=1", 0, 1 },
        { "hfp-v2_2023-10-30_bus-0018-00678_route1065.txt", 37, "VP=29 DUE=1 ARR=1 ARS=1 DEP=1 PDE=1 DOO=1 DOC=1 VJOUT=1", 0, 1 },
        { "hfp-v2_2023-10-30_bus-0018-01047_route5530.txt", 18, "VP=10 DUE=2 ARR=1 ARS=1 DEP=1 PDE=1 DOO=1 VJA=1", 0, 1 },
        { "hfp-v2_2024-02-13_bus-0018-01029_route5520.txt", 1034, "VP=1013 DUE=1 ARR=1 ARS=1 DEP=2 PDE=1 PAS=1 DOO=2 DOC=2 TLR=8 VJA=1 VJOUT=1", 940, 1 },
    };

    [Theory]
    [MemberData(nameof(Files))]
    public void Recording_RealHslFile_EveryLineParsesWithExpectedCountsPerType(string file, int lines, string expectedTypes, int withoutPosition, int vehicles)
    {
        var path = SharedData.RequireFile(Path.Combine("hfp", file));
        var stream = new HfpStream();
        using (var reader = RecordingReader.Open(path))
        {
            while (reader.TryRead(out var line))
            {
                var outcome = stream.Process(line, out var ev);
                Assert.True(outcome == HfpOutcome.Event, $"{file}:{line.LineNumber} was {outcome}: {string.Join(",", stream.Rejections.NonZero())}");
                Assert.False(string.IsNullOrEmpty(ev.VehicleId));
                Assert.NotEqual(default, ev.EventTime);
            }

            Assert.Equal(lines, reader.LineNumber);
        }

        Assert.Equal(lines, stream.Messages);
        Assert.Equal(lines, stream.Parsed);
        Assert.Equal(0, stream.Rejections.Total);
        Assert.Equal(expectedTypes, Describe(stream));
        Assert.Equal(withoutPosition, stream.Parser.ParsedWithoutPosition);
        Assert.Equal(vehicles, stream.Vehicles);
    }

    [Fact]
    public void Recording_ApcPartialFile_IsRejectedAsUnknownEventType()
    {
        // grep -c ' {"APC":{' gives 2: passenger-counter messages, not one of the 18 vehicle event types.
        var path = SharedData.RequireFile(Path.Combine("hfp", "hfp-v2_2024-02-13_bus-0018-01029_apc-partial.txt"));
        var stream = new HfpStream();
        using var reader = RecordingReader.Open(path);
        while (reader.TryRead(out var line))
        {
            Assert.Equal(HfpOutcome.Rejected, stream.Process(line, out _));
        }

        Assert.Equal(2, stream.Messages);
        Assert.Equal(2, stream.Rejections[RejectReason.UnknownEventType]);
        Assert.Equal(0, stream.Parsed);
    }

    [Fact]
    public void Csv_RealVpExport_EveryRowParses()
    {
        // 110 data rows (wc -l = 111 with the header); every row is tram 15, oper 40 / veh 601 (cut -d, -f3,4 | sort -u).
        var path = SharedData.RequireFile(Path.Combine("hfp", "hfp-vp-csv_2025-03-01_tram15_one-stop-viikki.csv"));
        var parser = new HfpParser();
        using var reader = HfpCsvReader.Open(path, parser);
        var events = new List<VehicleEvent>();
        foreach (var (reason, ev) in reader.ReadAll())
        {
            Assert.True(reason == RejectReason.None, $"line {reader.LineNumber}: {reason}");
            events.Add(ev);
        }

        Assert.Equal(110, events.Count);
        Assert.All(events, e => Assert.Equal("0040/00601", e.VehicleId));
        Assert.All(events, e => Assert.Equal(EventType.Vp, e.Type));
        Assert.All(events, e => Assert.True(e.HasPosition));
        // First row: dl -19 (19 s late -> +19), stop "1363401.0" read as 1363401, start 09:56, dir 1 -> 0.
        var first = events[0];
        Assert.Equal(19, first.DelaySeconds);
        Assert.Equal("1363401", first.StopId);
        Assert.Equal("2015", first.RouteId);
        Assert.Equal((9 * 3600) + (56 * 60), first.StartTimeSeconds);
        Assert.Equal(0, first.DirectionId);
        Assert.Equal(new DateTime(2025, 3, 1, 8, 3, 37, 255, DateTimeKind.Utc), first.EventTime);
        // 81 rows have an empty stop (cut -d, -f20 | grep -c '^$'): their stop stays absent.
        Assert.Equal(81, events.Count(e => e.StopId is null));
    }

    private static string Describe(HfpStream s) => string.Join(" ",
        HfpEventTypes.All.Where(t => s.EventsOfType(t) > 0).Select(t => $"{HfpEventTypes.Name(t)}={s.EventsOfType(t)}"));
}
