using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Fleet.Simulation.Dynamics;
using Fleet.Simulation.Output;
using Google.Protobuf;
using TransitRealtime;

namespace Fleet.Simulation.Tests;

public sealed partial class OutputTests : IClassFixture<GeneratedCityFixture>
{
    // The payload keys in HSL's order, taken from /work/shared/data/hfp/hfp-v2_2023-10-29_bus-0012-01913_route4400.txt.
    private static readonly string[] VpKeys =
        ["desi", "dir", "oper", "veh", "tst", "tsi", "spd", "hdg", "lat", "long", "acc", "dl", "odo", "drst", "oday", "jrn", "line", "start", "loc", "stop", "route", "occu"];

    private readonly GeneratedCityFixture _city;

    public OutputTests(GeneratedCityFixture city) => _city = city;

    private IEnumerable<string> HfpLines => _city.Lines.Where((l, i) => l.Contains(" /hfp/", StringComparison.Ordinal) && !IsMalformed(i + 1));

    private bool IsMalformed(long lineNumber) => _city.Summary.Malformed.Any(m => m.Line == lineNumber);

    [Fact]
    public void Recording_HfpLines_HaveHslTopicAndPayload()
    {
        var stopIds = _city.Gtfs["stops.txt"].Select(s => s["stop_id"]).ToHashSet(StringComparer.Ordinal);
        var count = 0;
        foreach (var line in HfpLines)
        {
            var m = LineRegex().Match(line);
            Assert.True(m.Success, $"not <time> <topic> <payload>: {line}");
            var levels = m.Groups["topic"].Value.Split('/');
            // "", hfp, v2, journey, ongoing, event, mode, oper, veh, route, dir, headsign, start, next_stop, level, geohash x4
            Assert.True(levels.Length == 19, $"topic levels {levels.Length}: {line}");
            Assert.Matches("^[0-9]{4}$", levels[7]);
            Assert.Matches("^[0-9]{5}$", levels[8]);
            Assert.Matches("^[12]$", levels[10]);
            Assert.Matches("^[0-9]{2}:[0-9]{2}$", levels[12]);
            Assert.True(stopIds.Contains(levels[13]) || levels[13] == "EOL", $"next_stop {levels[13]}");

            using var doc = JsonDocument.Parse(m.Groups["payload"].Value);
            var root = doc.RootElement.EnumerateObject().Single();
            Assert.Equal(levels[5].ToUpperInvariant(), root.Name);
            var keys = root.Value.EnumerateObject().Select(p => p.Name).ToArray();
            var expected = root.Name == "VP" ? VpKeys : [.. VpKeys, "ttarr", "ttdep"];
            Assert.Equal(expected, keys);
            var tst = DateTime.Parse(root.Value.GetProperty("tst").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
            Assert.Equal(new DateTimeOffset(tst, TimeSpan.Zero).ToUnixTimeSeconds(), root.Value.GetProperty("tsi").GetInt64());

            // The geohash levels repeat the first decimals of the reported position.
            var lat = root.Value.GetProperty("lat").GetRawText().Split('.');
            var lon = root.Value.GetProperty("long").GetRawText().Split('.');
            Assert.Equal($"{lat[0]};{lon[0]}", levels[15]);
            Assert.Equal($"{lat[1][0]}{lon[1][0]}", levels[16]);
            Assert.Equal($"{lat[1][1]}{lon[1][1]}", levels[17]);
            Assert.Equal($"{lat[1][2]}{lon[1][2]}", levels[18]);
            count++;
        }

        Assert.True(count > 10_000, $"only {count} HFP lines");
    }

    [Fact]
    public void Recording_AllStopEventTypes_Present()
    {
        var types = HfpLines.Select(l => l.Split('/')[5]).ToHashSet(StringComparer.Ordinal);
        foreach (var t in new[] { "vp", "due", "arr", "ars", "doo", "doc", "pde", "dep", "pas" })
        {
            Assert.Contains(t, types);
        }
    }

    [Fact]
    public void Recording_Lines_OrderedByReceiveTime()
    {
        var previous = DateTime.MinValue;
        for (var i = 0; i < _city.Lines.Length; i++)
        {
            if (IsMalformed(i + 1))
            {
                continue;
            }

            var time = DateTime.Parse(_city.Lines[i].AsSpan(0, 27), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
            Assert.True(time >= previous, $"line {i + 1} received before line {i}");
            previous = time;
        }
    }

    [Fact]
    public void Recording_Bursts_DeliverOldMessagesLate()
    {
        var late = HfpLines.Count(l =>
        {
            var receive = DateTime.Parse(l.AsSpan(0, 27), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
            var at = l.IndexOf("\"tst\":\"", StringComparison.Ordinal) + 7;
            var tst = DateTime.Parse(l.AsSpan(at, 24), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
            return (receive - tst).TotalSeconds > 10;
        });
        // Ordinary latency is under 0.2 s; only messages held back in a burst can be 10 s late, and not all of them are.
        Assert.InRange(late, 1, _city.Summary.Day.BufferedMessages);
    }

    [Fact]
    public void Recording_EachVehicle_MessagesReceivedInTheOrderTheyWereSent()
    {
        // A vehicle's messages reach the recording in event-time order, tunnel backlogs included (the modem sends its
        // backlog before anything newer).
        var last = new Dictionary<string, DateTime>(StringComparer.Ordinal);
        foreach (var line in HfpLines)
        {
            var levels = line.Split(' ')[1].Split('/');
            var vehicle = levels[7] + "/" + levels[8];
            var at = line.IndexOf("\"tst\":\"", StringComparison.Ordinal) + 7;
            var tst = DateTime.Parse(line.AsSpan(at, 24), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
            Assert.True(!last.TryGetValue(vehicle, out var before) || before <= tst, $"{vehicle}: {tst:O} received after {before:O}");
            last[vehicle] = tst;
        }

        Assert.True(_city.Summary.Day.BufferedMessages > 0, "no tunnel burst in the generated day");
    }

    [Fact]
    public void Recording_MalformedLines_NamedAndBroken()
    {
        Assert.Equal(DaySimulation.MalformedKinds, _city.Summary.Malformed.Select(m => m.Kind));
        foreach (var (lineNumber, kind) in _city.Summary.Malformed)
        {
            var line = _city.Lines[lineNumber - 1];
            Assert.False(IsWellFormed(line), $"line {lineNumber} ({kind}) is well formed: {line}");
        }

        // Every other line is well formed.
        var wellFormed = _city.Lines.Count(IsWellFormed);
        Assert.Equal(_city.Lines.Length - _city.Summary.Malformed.Count, wellFormed);
    }

    private static bool IsWellFormed(string line)
    {
        var m = LineRegex().Match(line);
        if (!m.Success || !DateTime.TryParse(line.AsSpan(0, 27), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal, out _))
        {
            return false;
        }

        if (m.Groups["topic"].Value.StartsWith("gtfs-rt/", StringComparison.Ordinal))
        {
            return true;
        }

        try
        {
            using var doc = JsonDocument.Parse(m.Groups["payload"].Value);
        }
        catch (JsonException)
        {
            return false;
        }

        return m.Groups["topic"].Value.Split('/').Length == 19;
    }

    [Fact]
    public void Recording_GtfsRt_DecodesAndNamesScheduledTrips()
    {
        var trips = _city.Gtfs["trips.txt"].Select(t => t["trip_id"]).ToHashSet(StringComparer.Ordinal);
        var rt = _city.Lines.Where(l => l.Contains(" gtfs-rt/", StringComparison.Ordinal)).ToArray();
        Assert.Equal(_city.Summary.GtfsRtSnapshots, rt.Length);
        var updates = 0;
        foreach (var line in rt)
        {
            var parts = line.Split(' ');
            var feed = FeedMessage.Parser.ParseFrom(Convert.FromBase64String(parts[2]));
            Assert.Equal("2.0", feed.Header.GtfsRealtimeVersion);
            foreach (var entity in feed.Entity)
            {
                var trip = parts[1] == GtfsRtSnapshotWriter.TripUpdatesTopic ? entity.TripUpdate.Trip : entity.Vehicle.Trip;
                Assert.Contains(trip.TripId, trips);
                if (entity.TripUpdate is { } tu)
                {
                    Assert.NotEmpty(tu.StopTimeUpdate);
                    Assert.All(tu.StopTimeUpdate, u => Assert.Equal(tu.Delay, u.Arrival.Delay == Math.Max(0, tu.Delay) && u.StopSequence == 1 ? tu.Delay : u.Arrival.Delay));
                    updates++;
                }
            }
        }

        Assert.True(updates > 0, "no trip updates");
    }

    [Fact]
    public void Recording_GtfsRtVehiclePositions_OnlyWhatTheAgencyHasHeard()
    {
        // The agency's feed reports a vehicle's last position it received: every position in a snapshot (inside the
        // window) is an HFP message of that vehicle, same second, received before the snapshot. A bus in a tunnel keeps
        // its position from before the tunnel until the backlog arrives.
        var heard = new Dictionary<string, HashSet<long>>(StringComparer.Ordinal);
        var from = new DateTimeOffset(_city.Summary.RecordedFrom).ToUnixTimeSeconds();
        var checkedPositions = 0;
        for (var i = 0; i < _city.Lines.Length; i++)
        {
            if (IsMalformed(i + 1))
            {
                continue;
            }

            var parts = _city.Lines[i].Split(' ');
            if (parts[1].StartsWith("/hfp/", StringComparison.Ordinal))
            {
                var levels = parts[1].Split('/');
                var at = _city.Lines[i].IndexOf("\"tsi\":", StringComparison.Ordinal) + 6;
                var tsi = long.Parse(_city.Lines[i].AsSpan(at, 10), CultureInfo.InvariantCulture);
                var vehicle = levels[7] + "/" + levels[8];
                if (!heard.TryGetValue(vehicle, out var set))
                {
                    heard[vehicle] = set = [];
                }

                set.Add(tsi);
            }
            else if (parts[1] == GtfsRtSnapshotWriter.VehiclePositionsTopic)
            {
                foreach (var entity in FeedMessage.Parser.ParseFrom(Convert.FromBase64String(parts[2])).Entity)
                {
                    var ts = (long)entity.Vehicle.Timestamp;
                    if (ts < from)
                    {
                        continue; // heard before the recording began
                    }

                    var label = entity.Vehicle.Vehicle.Label;
                    Assert.True(heard.TryGetValue(label, out var set) && set.Contains(ts),
                        $"line {i + 1}: {label} at {DateTimeOffset.FromUnixTimeSeconds(ts):O} is not a report received before the snapshot");
                    checkedPositions++;
                }
            }
        }

        Assert.True(checkedPositions > 100, $"only {checkedPositions} positions checked");
    }

    [Fact]
    public void Recording_GtfsRt_BytesAreWhatGoogleProtobufWrites()
    {
        // The generator encodes the feeds by hand; the oracle is the library: parsing keeps every field that was set
        // (proto2 presence), and re-serializing writes them in the library's order and encodings.
        var rt = _city.Lines.Where(l => l.Contains(" gtfs-rt/", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(rt);
        var negativeDelays = 0;
        var longMessages = 0;
        foreach (var line in rt)
        {
            var bytes = Convert.FromBase64String(line.Split(' ')[2]);
            var feed = FeedMessage.Parser.ParseFrom(bytes);
            Assert.True(bytes.AsSpan().SequenceEqual(feed.ToByteArray()), $"GTFS-RT bytes differ from Google.Protobuf's on line: {line[..60]}");
            negativeDelays += feed.Entity.Count(e => e.TripUpdate is { Delay: < 0 });
            longMessages += feed.Entity.Count(e => e.CalculateSize() >= 128);
        }

        // Cases the hand encoder treats specially: ten-byte varints and two-byte length prefixes.
        Assert.True(negativeDelays > 0, "no trip update with a negative delay: the ten-byte varint is untested");
        Assert.True(longMessages > 0, "no entity of 128 bytes or more: multi-byte lengths are untested");
    }

    [Fact]
    public void Truth_EveryTripEveryStop_InSequenceAndArrivalNotAfterDeparture()
    {
        var stopTimes = _city.Gtfs["stop_times.txt"];
        Assert.Equal(stopTimes.Count, _city.Truth.Count);
        Assert.Equal("trip_id,stop_id,stop_sequence,vehicle,arrival,departure", TruthWriter.Header);
        for (var i = 0; i < stopTimes.Count; i++)
        {
            var s = stopTimes[i];
            var t = _city.Truth[i];
            Assert.Equal(s["trip_id"], t["trip_id"]);
            Assert.Equal(s["stop_id"], t["stop_id"]);
            Assert.Equal(s["stop_sequence"], t["stop_sequence"]);
            Assert.Matches("^[0-9]{4}/[0-9]{5}$", t["vehicle"]);
            var arrival = DateTime.Parse(t["arrival"], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
            var departure = DateTime.Parse(t["departure"], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
            Assert.True(arrival <= departure, $"arrival after departure: {t["trip_id"]} #{t["stop_sequence"]}");
            if (i > 0 && _city.Truth[i - 1]["trip_id"] == t["trip_id"])
            {
                var before = DateTime.Parse(_city.Truth[i - 1]["departure"], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
                Assert.True(before <= arrival, $"stop {t["stop_sequence"]} of {t["trip_id"]} reached before leaving the previous one");
            }
        }
    }

    [Fact]
    public void Truth_Delays_VaryButStayPlausible()
    {
        // Actual minus scheduled arrival (the agency is in UTC+2 on 2026-03-02).
        var schedule = _city.Gtfs["stop_times.txt"].ToDictionary(s => (s["trip_id"], s["stop_sequence"]), s => GeneratedCityFixture.GtfsSeconds(s["arrival_time"]));
        var midnight = new DateTime(2026, 3, 1, 22, 0, 0, DateTimeKind.Utc);
        var delays = _city.Truth.Select(t =>
            (DateTime.Parse(t["arrival"], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal) - midnight).TotalSeconds
            - schedule[(t["trip_id"], t["stop_sequence"])]).ToArray();
        var mean = delays.Average();
        var sd = Math.Sqrt(delays.Select(d => (d - mean) * (d - mean)).Average());
        Assert.InRange(mean, -180, 300);
        Assert.InRange(sd, 20, 600);
    }

    [Fact]
    public void Gtfs_Feed_ReferencesResolveAndStopsSpaced300To600m()
    {
        var g = _city.Gtfs;
        foreach (var name in new[] { "agency.txt", "stops.txt", "routes.txt", "trips.txt", "stop_times.txt", "calendar.txt", "shapes.txt" })
        {
            Assert.True(g.ContainsKey(name), $"{name} missing");
        }

        Assert.Equal("Europe/Helsinki", g["agency.txt"].Single()["agency_timezone"]);
        var stops = g["stops.txt"].Select(s => s["stop_id"]).ToHashSet(StringComparer.Ordinal);
        var routes = g["routes.txt"].Select(s => s["route_id"]).ToHashSet(StringComparer.Ordinal);
        var shapes = g["shapes.txt"].Select(s => s["shape_id"]).ToHashSet(StringComparer.Ordinal);
        var trips = g["trips.txt"];
        Assert.All(trips, t => Assert.Contains(t["route_id"], routes));
        Assert.All(trips, t => Assert.Contains(t["shape_id"], shapes));
        Assert.All(g["stop_times.txt"], s => Assert.Contains(s["stop_id"], stops));

        var gaps = g["stop_times.txt"].GroupBy(s => s["trip_id"]).SelectMany(trip =>
        {
            var d = trip.Select(s => double.Parse(s["shape_dist_traveled"], CultureInfo.InvariantCulture)).ToArray();
            return d.Zip(d.Skip(1), (a, b) => b - a);
        }).ToArray();
        Assert.All(gaps, gap => Assert.InRange(gap, 150, 800));
        Assert.True(gaps.Count(gap => gap is >= 280 and <= 650) >= 0.85 * gaps.Length, "fewer than 85% of stop gaps are 300 to 600 m");
    }

    [Fact]
    public void Schedule_Headways_ShorterInThePeak()
    {
        var city = City.CityBuilder.Build(GeneratedCityFixture.SmallCity with { Start = new TimeOnly(4, 0), Hours = 5 });
        var early = new List<int>();
        var peak = new List<int>();
        foreach (var group in city.Trips.GroupBy(t => t.Pattern))
        {
            var starts = group.Select(t => t.StartSeconds).Order().ToArray();
            for (var k = 1; k < starts.Length; k++)
            {
                (starts[k - 1] < (5 * 3600) + 1800 ? early : starts[k - 1] >= 6 * 3600 ? peak : []).Add(starts[k] - starts[k - 1]);
            }
        }

        Assert.True(early.Average() > 1.5 * peak.Average(), $"early {early.Average()} s vs peak {peak.Average()} s");
    }

    [Fact]
    public void Recording_ScheduleAlreadyRunning_WholeFleetFromTheWindowsFirstMinutes()
    {
        // The window is 06:00-07:30 local (04:00-05:30 UTC on 2026-03-02): every line was received inside it.
        var from = new DateTime(2026, 3, 2, 4, 0, 0, DateTimeKind.Utc);
        var until = from.AddHours(GeneratedCityFixture.SmallCity.Hours);
        Assert.Equal(from, _city.Summary.RecordedFrom);
        Assert.Equal(until, _city.Summary.RecordedUntil);
        var firstSeen = new Dictionary<string, DateTime>(StringComparer.Ordinal);
        for (var i = 0; i < _city.Lines.Length; i++)
        {
            if (IsMalformed(i + 1))
            {
                continue;
            }

            var line = _city.Lines[i];
            var time = DateTime.Parse(line.AsSpan(0, 27), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
            Assert.True(time >= from && time < until, $"line {i + 1} received outside the window: {line}");
            if (line.Contains(" /hfp/", StringComparison.Ordinal))
            {
                var levels = line.Split(' ')[1].Split('/');
                firstSeen.TryAdd(levels[7] + "/" + levels[8], time);
            }
        }

        // The fleet is the buses on the road at the window's busiest moment; the recording has about that many, and
        // most of them report from its first minute, on a trip or on a layover at a terminal (the others pull out later).
        var fleet = GeneratedCityFixture.SmallCity.Vehicles;
        Assert.InRange(firstSeen.Count, (int)(0.85 * fleet), (int)(1.2 * fleet));
        Assert.Equal(_city.Summary.Vehicles, firstSeen.Count);
        var atOnce = firstSeen.Values.Count(t => t < from.AddMinutes(1));
        Assert.True(atOnce >= 0.8 * firstSeen.Count, $"only {atOnce} of {firstSeen.Count} vehicles report in the window's first minute");
    }

    [Fact]
    public void Generate_WindowNotWholeSnapshotIntervals_EveryLineReceivedInsideIt()
    {
        // 2,702 s: the last GTFS-RT snapshot instant (2,700 s) would be received 2 s later, after the window's end.
        var dir = Directory.CreateTempSubdirectory("fleet-sim-edge-").FullName;
        try
        {
            var summary = CityGenerator.Generate(GeneratedCityFixture.SmallCity with { Routes = 2, Vehicles = 6, Hours = 2702 / 3600.0 }, dir);
            Assert.Equal(TimeSpan.FromSeconds(2702), summary.RecordedUntil - summary.RecordedFrom);
            var lines = GeneratedCityFixture.ReadRecording(summary.RecordingPath);
            var times = lines.Where((l, i) => !summary.Malformed.Any(m => m.Line == i + 1))
                .Select(l => DateTime.Parse(l.AsSpan(0, 27), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal)).ToList();
            Assert.All(times, t => Assert.InRange(t, summary.RecordedFrom, summary.RecordedUntil.AddTicks(-1)));
            Assert.Contains(lines, l => l.Contains(" gtfs-rt/", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData(1, 60, 1000, 1.0, 6)]
    [InlineData(1, 60, 1000, 3.0, 6)]
    [InlineData(1, 8, 50, 1.0, 7)]
    [InlineData(2, 12, 150, 0.75, 5)]
    [InlineData(3, 20, 300, 2.0, 13)]
    public void Schedule_AnyWindow_FleetAboutTheVehiclesAsked(int cityNumber, int routes, int vehicles, double hours, int startHour)
    {
        var city = City.CityBuilder.Build(new GenerateOptions
        {
            City = cityNumber, Routes = routes, Vehicles = vehicles, Hours = hours, Start = new TimeOnly(startHour, 0),
        });

        // Every block runs during the window: its first trip ends after the window opens, its last starts before it
        // closes.
        Assert.InRange(city.Blocks.Count, (int)(0.85 * vehicles), (int)(1.15 * vehicles));
        Assert.All(city.Blocks, b => Assert.True(b.Trips[0].Arrival[^1] >= city.WindowStartSeconds && b.Trips[^1].StartSeconds < city.WindowEndSeconds, b.Id));
        Assert.Contains(city.Trips, t => t.StartSeconds < city.WindowStartSeconds);
    }

    [GeneratedRegex("^(?<time>[0-9T:.Z-]{27}) (?<topic>\\S+) (?<payload>.+)$")]
    private static partial Regex LineRegex();
}
