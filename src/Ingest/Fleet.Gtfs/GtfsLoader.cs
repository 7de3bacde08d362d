using System.Globalization;
using Fleet.Gtfs.Csv;

namespace Fleet.Gtfs;

/// <summary>
/// Loads a GTFS static feed (zip or folder) into an immutable <see cref="Schedule"/>.
/// </summary>
/// <remarks>
/// <para>Reads agency, stops, routes, trips, stop_times, shapes, calendar, calendar_dates and frequencies.
/// A malformed row is skipped (or repaired where the fix is unambiguous) and recorded in
/// <see cref="Schedule.Report"/> with file, line and reason; everything else loads. A missing required file,
/// a missing required column or an unusable agency time zone is a <see cref="GtfsFormatException"/> naming it.</para>
/// <para>Stop times are ordered by stop_sequence; empty times between timed stops are interpolated by distance.
/// Every stop time gets a distance along its trip in metres: shape_dist_traveled mapped onto the shape's
/// geometry when the feed gives it, otherwise the stop projected onto the shape in order, otherwise the
/// stop-to-stop distance.</para>
/// <para>Stateless and thread-safe; each call loads independently.</para>
/// </remarks>
public static class GtfsLoader
{
    /// <summary>Files a feed must have (plus calendar.txt or calendar_dates.txt).</summary>
    public static readonly IReadOnlyList<string> RequiredFiles = ["agency.txt", "stops.txt", "routes.txt", "trips.txt", "stop_times.txt"];

    /// <summary>Loads the feed at <paramref name="path"/> (a .zip file or a folder of .txt files).</summary>
    /// <exception cref="GtfsFormatException">The feed is missing, not a zip, lacks a required file or column, or has no usable time zone.</exception>
    public static Schedule Load(string path)
    {
        using var source = GtfsSource.Open(path);
        return new Builder(source).Build();
    }

    private struct RawStopTime
    {
        public int Trip;
        public int Sequence;
        public int Stop;
        public int Arrival;   // -1 when empty
        public int Departure; // -1 when empty
        public float FeedDistance;
        public byte Pickup;
        public byte DropOff;
        public int Line;
    }

    private sealed class Builder(GtfsSource source)
    {
        private readonly GtfsLoadReport _report = new();
        private readonly List<Agency> _agencies = [];
        private readonly Dictionary<string, int> _agencyIndex = new(StringComparer.Ordinal);
        private readonly List<Stop> _stops = [];
        private readonly Dictionary<string, int> _stopIndex = new(StringComparer.Ordinal);
        private readonly List<Route> _routes = [];
        private readonly Dictionary<string, int> _routeIndex = new(StringComparer.Ordinal);
        private readonly List<string> _services = [];
        private readonly Dictionary<string, int> _serviceIndex = new(StringComparer.Ordinal);
        private readonly List<string> _shapes = [];
        private readonly Dictionary<string, int> _shapeIndex = new(StringComparer.Ordinal);
        private readonly List<Trip> _trips = [];
        private readonly List<string> _tripBlocks = []; // block_id per trip, empty when absent
        private readonly Dictionary<string, int> _tripIndex = new(StringComparer.Ordinal);
        private TimeZoneInfo? _timeZone;
        private LocalProjection _projection = new(0, 0);
        private int[] _shapeFirst = [0];
        private double[] _shapeX = [];
        private double[] _shapeY = [];
        private double[] _shapeFeedDist = [];
        private ShapePath?[] _shapePaths = [];

        public Schedule Build()
        {
            foreach (var file in RequiredFiles)
            {
                if (!source.Exists(file))
                {
                    throw new GtfsFormatException($"required file '{file}' is missing from GTFS feed '{source.Description}'");
                }
            }

            if (!source.Exists("calendar.txt") && !source.Exists("calendar_dates.txt"))
            {
                throw new GtfsFormatException($"GTFS feed '{source.Description}' has neither calendar.txt nor calendar_dates.txt (one is required)");
            }

            LoadAgencies();
            LoadStops();
            LoadRoutes();
            var calendar = LoadCalendar();
            LoadShapes();
            LoadTrips();
            var (stopTimes, tripStart, tripCount) = LoadStopTimes();
            var (frequencies, freqStart, freqCount) = LoadFrequencies();

            var trips = new Trip[_trips.Count];
            for (var t = 0; t < trips.Length; t++)
            {
                trips[t] = _trips[t] with
                {
                    FirstStopTime = tripStart[t],
                    StopTimeCount = tripCount[t],
                    FirstFrequency = freqStart[t],
                    FrequencyCount = freqCount[t],
                };
            }

            return new Schedule(new ScheduleParts
            {
                Agencies = [.. _agencies],
                TimeZone = _timeZone!,
                Stops = [.. _stops],
                Routes = [.. _routes],
                Trips = trips,
                TripBlockIds = [.. _tripBlocks],
                ServiceIds = [.. _services],
                ShapeIds = [.. _shapes],
                StopTimes = stopTimes,
                Frequencies = frequencies,
                Calendar = calendar,
                ShapeFirstPoint = _shapeFirst,
                ShapeX = _shapeX,
                ShapeY = _shapeY,
                ShapePaths = _shapePaths,
                Projection = _projection,
                Report = _report,
            });
        }

        // ---------------------------------------------------------------- agency.txt
        private void LoadAgencies()
        {
            var csv = Open("agency.txt", required: true)!;
            var cId = csv.IndexOf("agency_id");
            var cName = csv.IndexOf("agency_name");
            var cUrl = csv.IndexOf("agency_url");
            var cTz = RequireColumn(csv, "agency_timezone");
            while (csv.Read())
            {
                var id = csv[cId].Trim().ToString();
                var tzId = csv[cTz].Trim().ToString();
                if (_agencyIndex.ContainsKey(id))
                {
                    Issue(csv, "duplicate_id", $"agency_id '{id}' appears twice; the first row is kept");
                    continue;
                }

                if (tzId.Length == 0)
                {
                    Issue(csv, "missing_field", "agency_timezone is empty");
                }
                else if (!TimeZoneInfo.TryFindSystemTimeZoneById(tzId, out var tz))
                {
                    Issue(csv, "bad_timezone", $"agency_timezone '{tzId}' is not a known IANA time zone");
                }
                else if (_timeZone is null)
                {
                    _timeZone = tz;
                }
                else if (!string.Equals(tz.Id, _timeZone.Id, StringComparison.Ordinal))
                {
                    Issue(csv, "timezone_mismatch", $"agency_timezone '{tzId}' differs from the first agency's '{_timeZone.Id}'; the first is used");
                }

                _agencyIndex[id] = _agencies.Count;
                _agencies.Add(new Agency(id, csv[cName].Trim().ToString(), csv[cUrl].Trim().ToString(), tzId));
            }

            if (_timeZone is null)
            {
                throw new GtfsFormatException($"agency.txt of '{source.Description}' has no usable agency_timezone");
            }
        }

        // ---------------------------------------------------------------- stops.txt
        private void LoadStops()
        {
            var csv = Open("stops.txt", required: true)!;
            var cId = RequireColumn(csv, "stop_id");
            var cName = csv.IndexOf("stop_name");
            var cLat = csv.IndexOf("stop_lat");
            var cLon = csv.IndexOf("stop_lon");
            var cType = csv.IndexOf("location_type");
            var cParent = csv.IndexOf("parent_station");
            var cCode = csv.IndexOf("stop_code");
            var parents = new List<(int Stop, string Parent, int Line)>();
            double sumLat = 0, sumLon = 0;
            var n = 0;
            while (csv.Read())
            {
                var id = csv[cId].Trim();
                if (id.IsEmpty)
                {
                    Issue(csv, "missing_field", "stop_id is empty");
                    continue;
                }

                var type = 0;
                var typeText = csv[cType].Trim();
                if (!typeText.IsEmpty && (!int.TryParse(typeText, NumberStyles.None, CultureInfo.InvariantCulture, out type) || type > 4))
                {
                    Issue(csv, "bad_value", $"location_type '{typeText}' of stop '{id}' is not 0-4; 0 is assumed");
                    type = 0;
                }

                var hasLat = TryDouble(csv[cLat], out var lat);
                var hasLon = TryDouble(csv[cLon], out var lon);
                var valid = hasLat && hasLon && Math.Abs(lat) <= 90 && Math.Abs(lon) <= 180;
                if (!valid)
                {
                    if (type <= 2)
                    {
                        Issue(csv, "bad_coordinate", $"stop '{id}' has no valid stop_lat/stop_lon ('{csv[cLat]}', '{csv[cLon]}')");
                        continue;
                    }

                    lat = lon = double.NaN;
                }

                var idString = id.ToString();
                if (_stopIndex.ContainsKey(idString))
                {
                    Issue(csv, "duplicate_id", $"stop_id '{idString}' appears twice; the first row is kept");
                    continue;
                }

                if (valid && type <= 1)
                {
                    sumLat += lat;
                    sumLon += lon;
                    n++;
                }

                var index = _stops.Count;
                _stopIndex[idString] = index;
                _stops.Add(new Stop(idString, csv[cName].Trim().ToString(), lat, lon, (byte)type, -1) { Code = csv[cCode].Trim().ToString() });
                var parent = csv[cParent].Trim();
                if (!parent.IsEmpty)
                {
                    parents.Add((index, parent.ToString(), csv.LineNumber));
                }
            }

            foreach (var (stop, parent, line) in parents)
            {
                if (_stopIndex.TryGetValue(parent, out var p))
                {
                    _stops[stop] = _stops[stop] with { ParentStation = p };
                }
                else
                {
                    _report.Add("stops.txt", line, "unknown_parent_station", $"parent_station '{parent}' of stop '{_stops[stop].Id}' is not a stop");
                }
            }

            if (n > 0)
            {
                _projection = new LocalProjection(sumLat / n, sumLon / n);
            }
        }

        // ---------------------------------------------------------------- routes.txt
        private void LoadRoutes()
        {
            var csv = Open("routes.txt", required: true)!;
            var cId = RequireColumn(csv, "route_id");
            var cAgency = csv.IndexOf("agency_id");
            var cShort = csv.IndexOf("route_short_name");
            var cLong = csv.IndexOf("route_long_name");
            var cType = csv.IndexOf("route_type");
            var cColor = csv.IndexOf("route_color");
            var cTextColor = csv.IndexOf("route_text_color");
            while (csv.Read())
            {
                var id = csv[cId].Trim().ToString();
                if (id.Length == 0)
                {
                    Issue(csv, "missing_field", "route_id is empty");
                    continue;
                }

                if (_routeIndex.ContainsKey(id))
                {
                    Issue(csv, "duplicate_id", $"route_id '{id}' appears twice; the first row is kept");
                    continue;
                }

                var agencyId = csv[cAgency].Trim().ToString();
                if (!_agencyIndex.TryGetValue(agencyId, out var agency))
                {
                    if (agencyId.Length > 0 || _agencies.Count != 1)
                    {
                        Issue(csv, "unknown_agency", $"agency_id '{agencyId}' of route '{id}' is not in agency.txt; the first agency is assumed");
                    }

                    agency = 0;
                }

                var typeText = csv[cType].Trim();
                if (!int.TryParse(typeText, NumberStyles.None, CultureInfo.InvariantCulture, out var type))
                {
                    Issue(csv, "bad_value", $"route_type '{typeText}' of route '{id}' is not a number");
                    type = -1;
                }

                _routeIndex[id] = _routes.Count;
                _routes.Add(new Route(id, agency, csv[cShort].Trim().ToString(), csv[cLong].Trim().ToString(), type)
                {
                    Color = HexColor(csv, csv[cColor], "route_color", id),
                    TextColor = HexColor(csv, csv[cTextColor], "route_text_color", id),
                });
            }
        }

        // A GTFS color: six hex digits without '#'; empty is absent, anything else an issue.
        private string? HexColor(CsvReader csv, ReadOnlySpan<char> cell, string column, string routeId)
        {
            var text = cell.Trim();
            if (text.IsEmpty)
            {
                return null;
            }

            if (text.Length == 6 && int.TryParse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out _))
            {
                return text.ToString().ToUpperInvariant();
            }

            Issue(csv, "bad_value", $"{column} '{text}' of route '{routeId}' is not six hex digits");
            return null;
        }

        // ---------------------------------------------------------------- calendar.txt, calendar_dates.txt
        private ServiceCalendar LoadCalendar()
        {
            var weekdays = new List<byte>();
            var start = new List<int>();
            var end = new List<int>();
            var exceptions = new Dictionary<long, bool>();
            string[] days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

            int Service(string id)
            {
                if (!_serviceIndex.TryGetValue(id, out var s))
                {
                    s = _services.Count;
                    _serviceIndex[id] = s;
                    _services.Add(id);
                    weekdays.Add(0);
                    start.Add(int.MaxValue);
                    end.Add(int.MinValue);
                }

                return s;
            }

            var csv = Open("calendar.txt", required: false);
            if (csv is not null)
            {
                var cId = RequireColumn(csv, "service_id");
                var cDays = days.Select(d => RequireColumn(csv, d)).ToArray();
                var cStart = RequireColumn(csv, "start_date");
                var cEnd = RequireColumn(csv, "end_date");
                var seen = new HashSet<string>(StringComparer.Ordinal);
                while (csv.Read())
                {
                    var id = csv[cId].Trim().ToString();
                    if (id.Length == 0)
                    {
                        Issue(csv, "missing_field", "service_id is empty");
                        continue;
                    }

                    if (!TryDate(csv[cStart], out var from) || !TryDate(csv[cEnd], out var to))
                    {
                        Issue(csv, "bad_date", $"service '{id}': start_date '{csv[cStart]}' / end_date '{csv[cEnd]}' is not YYYYMMDD");
                        continue;
                    }

                    byte mask = 0;
                    var ok = true;
                    for (var d = 0; d < 7; d++)
                    {
                        var v = csv[cDays[d]].Trim();
                        if (v.SequenceEqual("1"))
                        {
                            mask |= (byte)(1 << d);
                        }
                        else if (!v.SequenceEqual("0"))
                        {
                            ok = false;
                        }
                    }

                    if (!ok)
                    {
                        Issue(csv, "bad_value", $"service '{id}': a weekday column is not 0 or 1");
                        continue;
                    }

                    if (!seen.Add(id))
                    {
                        Issue(csv, "duplicate_id", $"service_id '{id}' appears twice in calendar.txt; the first row is kept");
                        continue;
                    }

                    var s = Service(id);
                    weekdays[s] = mask;
                    start[s] = from.DayNumber;
                    end[s] = to.DayNumber;
                }
            }

            csv = Open("calendar_dates.txt", required: false);
            if (csv is not null)
            {
                var cId = RequireColumn(csv, "service_id");
                var cDate = RequireColumn(csv, "date");
                var cType = RequireColumn(csv, "exception_type");
                while (csv.Read())
                {
                    var id = csv[cId].Trim().ToString();
                    if (id.Length == 0)
                    {
                        Issue(csv, "missing_field", "service_id is empty");
                        continue;
                    }

                    if (!TryDate(csv[cDate], out var date))
                    {
                        Issue(csv, "bad_date", $"date '{csv[cDate]}' of service '{id}' is not YYYYMMDD");
                        continue;
                    }

                    var type = csv[cType].Trim();
                    if (!type.SequenceEqual("1") && !type.SequenceEqual("2"))
                    {
                        Issue(csv, "bad_value", $"exception_type '{type}' of service '{id}' is not 1 or 2");
                        continue;
                    }

                    exceptions[ServiceCalendar.Key(Service(id), date.DayNumber)] = type[0] == '1';
                }
            }

            return new ServiceCalendar([.. weekdays], [.. start], [.. end], exceptions);
        }

        // ---------------------------------------------------------------- shapes.txt
        private void LoadShapes()
        {
            var csv = Open("shapes.txt", required: false);
            if (csv is null)
            {
                return;
            }

            var cId = RequireColumn(csv, "shape_id");
            var cLat = RequireColumn(csv, "shape_pt_lat");
            var cLon = RequireColumn(csv, "shape_pt_lon");
            var cSeq = RequireColumn(csv, "shape_pt_sequence");
            var cDist = csv.IndexOf("shape_dist_traveled");
            var lookup = _shapeIndex.GetAlternateLookup<ReadOnlySpan<char>>();
            var keys = new List<long>();
            var lat = new List<double>();
            var lon = new List<double>();
            var dist = new List<double>();
            var lines = new List<int>();
            while (csv.Read())
            {
                var id = csv[cId].Trim();
                if (id.IsEmpty)
                {
                    Issue(csv, "missing_field", "shape_id is empty");
                    continue;
                }

                if (!TryDouble(csv[cLat], out var la) || !TryDouble(csv[cLon], out var lo) || Math.Abs(la) > 90 || Math.Abs(lo) > 180)
                {
                    Issue(csv, "bad_coordinate", $"shape '{id}' point has no valid shape_pt_lat/shape_pt_lon");
                    continue;
                }

                if (!int.TryParse(csv[cSeq].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var seq))
                {
                    Issue(csv, "bad_value", $"shape_pt_sequence '{csv[cSeq]}' of shape '{id}' is not a non-negative integer");
                    continue;
                }

                if (!lookup.TryGetValue(id, out var shape))
                {
                    shape = _shapes.Count;
                    var s = id.ToString();
                    _shapeIndex[s] = shape;
                    _shapes.Add(s);
                }

                keys.Add(((long)shape << 32) | (uint)seq);
                lat.Add(la);
                lon.Add(lo);
                dist.Add(TryDouble(csv[cDist], out var d) ? d : double.NaN);
                lines.Add(csv.LineNumber);
            }

            var order = Enumerable.Range(0, keys.Count).ToArray();
            var keyArray = keys.ToArray();
            Array.Sort(keyArray, order);
            var first = new int[_shapes.Count + 1];
            var xs = new List<double>(keys.Count);
            var ys = new List<double>(keys.Count);
            var ds = new List<double>(keys.Count);
            var current = -1;
            for (var i = 0; i < keyArray.Length; i++)
            {
                var shape = (int)(keyArray[i] >> 32);
                if (i > 0 && keyArray[i] == keyArray[i - 1])
                {
                    _report.Add("shapes.txt", lines[order[i]], "duplicate_sequence", $"shape '{_shapes[shape]}' repeats shape_pt_sequence {keyArray[i] & 0xFFFFFFFF}; the point is skipped");
                    continue;
                }

                while (current < shape)
                {
                    current++;
                    first[current] = xs.Count;
                }

                var (x, y) = _projection.ToLocal(lat[order[i]], lon[order[i]]);
                xs.Add(x);
                ys.Add(y);
                ds.Add(dist[order[i]]);
            }

            while (current < _shapes.Count)
            {
                current++;
                first[current] = xs.Count;
            }

            _shapeFirst = first;
            _shapeX = [.. xs];
            _shapeY = [.. ys];
            _shapeFeedDist = [.. ds];
            _shapePaths = new ShapePath?[_shapes.Count];
        }

        // ---------------------------------------------------------------- trips.txt
        private void LoadTrips()
        {
            var csv = Open("trips.txt", required: true)!;
            var cRoute = RequireColumn(csv, "route_id");
            var cService = RequireColumn(csv, "service_id");
            var cId = RequireColumn(csv, "trip_id");
            var cHeadsign = csv.IndexOf("trip_headsign");
            var cShort = csv.IndexOf("trip_short_name");
            var cDir = csv.IndexOf("direction_id");
            var cShape = csv.IndexOf("shape_id");
            var cBlock = csv.IndexOf("block_id");
            while (csv.Read())
            {
                var id = csv[cId].Trim().ToString();
                if (id.Length == 0)
                {
                    Issue(csv, "missing_field", "trip_id is empty");
                    continue;
                }

                if (_tripIndex.ContainsKey(id))
                {
                    Issue(csv, "duplicate_id", $"trip_id '{id}' appears twice; the first row is kept");
                    continue;
                }

                var routeId = csv[cRoute].Trim().ToString();
                if (!_routeIndex.TryGetValue(routeId, out var route))
                {
                    Issue(csv, "unknown_route", $"trip '{id}' names route_id '{routeId}', which is not in routes.txt");
                    continue;
                }

                var serviceId = csv[cService].Trim().ToString();
                if (!_serviceIndex.TryGetValue(serviceId, out var service))
                {
                    Issue(csv, "unknown_service", $"trip '{id}' names service_id '{serviceId}', which is in neither calendar file");
                    continue;
                }

                sbyte dir = -1;
                var dirText = csv[cDir].Trim();
                if (dirText.SequenceEqual("0"))
                {
                    dir = 0;
                }
                else if (dirText.SequenceEqual("1"))
                {
                    dir = 1;
                }
                else if (!dirText.IsEmpty)
                {
                    Issue(csv, "bad_value", $"direction_id '{dirText}' of trip '{id}' is not 0 or 1; treated as absent");
                }

                var shape = -1;
                var shapeId = csv[cShape].Trim();
                if (!shapeId.IsEmpty && !_shapeIndex.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(shapeId, out shape))
                {
                    Issue(csv, "unknown_shape", $"shape_id '{shapeId}' of trip '{id}' is not in shapes.txt; the trip keeps no shape");
                    shape = -1;
                }

                _tripIndex[id] = _trips.Count;
                _tripBlocks.Add(csv[cBlock].Trim().ToString());
                _trips.Add(new Trip(id, route, service, dir, shape, csv[cHeadsign].Trim().ToString(), csv[cShort].Trim().ToString(), 0, 0, 0, 0));
            }
        }

        // ---------------------------------------------------------------- stop_times.txt
        private (StopTime[] StopTimes, int[] Start, int[] Count) LoadStopTimes()
        {
            const string File = "stop_times.txt";
            var csv = Open(File, required: true)!;
            var cTrip = RequireColumn(csv, "trip_id");
            var cArr = RequireColumn(csv, "arrival_time");
            var cDep = RequireColumn(csv, "departure_time");
            var cStop = RequireColumn(csv, "stop_id");
            var cSeq = RequireColumn(csv, "stop_sequence");
            var cPick = csv.IndexOf("pickup_type");
            var cDrop = csv.IndexOf("drop_off_type");
            var cDist = csv.IndexOf("shape_dist_traveled");
            var trips = _tripIndex.GetAlternateLookup<ReadOnlySpan<char>>();
            var stops = _stopIndex.GetAlternateLookup<ReadOnlySpan<char>>();
            var raw = new List<RawStopTime>(1024);
            var lastTripText = string.Empty;
            var lastTrip = -1;
            while (csv.Read())
            {
                var tripText = csv[cTrip].Trim();
                int trip;
                if (tripText.SequenceEqual(lastTripText))
                {
                    trip = lastTrip;
                }
                else if (trips.TryGetValue(tripText, out trip))
                {
                    lastTripText = _trips[trip].Id;
                    lastTrip = trip;
                }
                else
                {
                    Issue(csv, "unknown_trip", $"trip_id '{tripText}' is not in trips.txt");
                    continue;
                }

                var stopText = csv[cStop].Trim();
                if (!stops.TryGetValue(stopText, out var stop))
                {
                    Issue(csv, "unknown_stop", $"stop_id '{stopText}' of trip '{tripText}' is not in stops.txt");
                    continue;
                }

                if (!int.TryParse(csv[cSeq].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var seq))
                {
                    Issue(csv, "bad_value", $"stop_sequence '{csv[cSeq]}' of trip '{tripText}' is not a non-negative integer");
                    continue;
                }

                var arr = ParseTime(csv, cArr, "arrival_time");
                var dep = ParseTime(csv, cDep, "departure_time");
                if (arr < 0)
                {
                    arr = dep;
                }
                else if (dep < 0)
                {
                    dep = arr;
                }

                if (arr >= 0 && dep < arr)
                {
                    Issue(csv, "decreasing_time", $"trip '{tripText}' stop_sequence {seq}: departure_time is before arrival_time; arrival is used");
                    dep = arr;
                }

                raw.Add(new RawStopTime
                {
                    Trip = trip,
                    Sequence = seq,
                    Stop = stop,
                    Arrival = arr,
                    Departure = dep,
                    FeedDistance = TryDouble(csv[cDist], out var d) ? (float)d : float.NaN,
                    Pickup = SmallCode(csv[cPick]),
                    DropOff = SmallCode(csv[cDrop]),
                    Line = csv.LineNumber,
                });
            }

            var keys = new long[raw.Count];
            var rows = raw.ToArray();
            raw = null;
            for (var i = 0; i < rows.Length; i++)
            {
                keys[i] = ((long)rows[i].Trip << 32) | (uint)rows[i].Sequence;
            }

            // Feeds are nearly always already in order; skip the sort then.
            var sorted = true;
            for (var i = 1; i < keys.Length && sorted; i++)
            {
                sorted = keys[i] > keys[i - 1];
            }

            if (!sorted)
            {
                Array.Sort(keys, rows);
            }

            var start = new int[_trips.Count];
            var count = new int[_trips.Count];
            var result = new StopTime[rows.Length];
            var n = 0;
            var patterns = new Dictionary<PatternKey, float[]>();
            for (var i = 0; i < rows.Length;)
            {
                var trip = rows[i].Trip;
                var j = i;
                var first = n;
                while (j < rows.Length && rows[j].Trip == trip)
                {
                    if (j > i && keys[j] == keys[j - 1])
                    {
                        _report.Add(File, rows[j].Line, "duplicate_sequence", $"trip '{_trips[trip].Id}' repeats stop_sequence {rows[j].Sequence}; the row is skipped");
                    }
                    else
                    {
                        rows[n++] = rows[j];
                    }

                    j++;
                }

                start[trip] = first;
                count[trip] = n - first;
                FinishTrip(trip, rows.AsSpan(first, n - first), result.AsSpan(first, n - first), patterns);
                i = j;
            }

            return (n == result.Length ? result : result[..n], start, count);
        }

        private readonly record struct PatternKey(int Shape, int Count, int Hash);

        private void FinishTrip(int trip, Span<RawStopTime> rows, Span<StopTime> output, Dictionary<PatternKey, float[]> patterns)
        {
            var distances = Distances(trip, rows, patterns);

            // Times: interpolate interior gaps by distance (evenly when distances are flat); fill leading and trailing gaps.
            var firstTimed = -1;
            var lastTimed = -1;
            for (var i = 0; i < rows.Length; i++)
            {
                if (rows[i].Arrival >= 0)
                {
                    if (firstTimed < 0)
                    {
                        firstTimed = i;
                    }

                    lastTimed = i;
                }
            }

            var tripId = _trips[trip].Id;
            if (firstTimed < 0)
            {
                _report.Add("stop_times.txt", rows[0].Line, "missing_time", $"trip '{tripId}' has no arrival or departure time at any stop; times are 00:00:00");
            }
            else if (firstTimed != 0 || lastTimed != rows.Length - 1)
            {
                _report.Add("stop_times.txt", rows[0].Line, "missing_time", $"trip '{tripId}' has no time at its first or last stop; the nearest time is copied");
            }

            var interpolated = new bool[rows.Length];
            var prev = firstTimed;
            for (var i = 0; i < rows.Length; i++)
            {
                if (rows[i].Arrival >= 0)
                {
                    if (prev >= 0 && prev != i && rows[i].Arrival < rows[prev].Departure)
                    {
                        _report.Add("stop_times.txt", rows[i].Line, "decreasing_time", $"trip '{tripId}' stop_sequence {rows[i].Sequence} arrives before the previous stop departs");
                    }

                    prev = i;
                    continue;
                }

                interpolated[i] = firstTimed >= 0;
                if (firstTimed < 0)
                {
                    rows[i].Arrival = rows[i].Departure = 0;
                    continue;
                }

                if (i < firstTimed || prev < 0)
                {
                    rows[i].Arrival = rows[i].Departure = rows[firstTimed].Arrival;
                    continue;
                }

                var next = i + 1;
                while (next < rows.Length && rows[next].Arrival < 0)
                {
                    next++;
                }

                if (next >= rows.Length)
                {
                    rows[i].Arrival = rows[i].Departure = rows[prev].Departure;
                    continue;
                }

                var d0 = distances[prev];
                var d1 = distances[next];
                var fraction = d1 > d0 ? (distances[i] - d0) / (d1 - d0) : (double)(i - prev) / (next - prev);
                var t = rows[prev].Departure + (int)Math.Round(Math.Clamp(fraction, 0, 1) * (rows[next].Arrival - rows[prev].Departure));
                rows[i].Arrival = rows[i].Departure = t;
            }

            for (var i = 0; i < rows.Length; i++)
            {
                ref var r = ref rows[i];
                output[i] = new StopTime(r.Stop, r.Sequence, new ServiceTime(r.Arrival), new ServiceTime(r.Departure), distances[i], r.Pickup, r.DropOff, interpolated[i]);
            }
        }

        private float[] Distances(int trip, Span<RawStopTime> rows, Dictionary<PatternKey, float[]> patterns)
        {
            var shape = _trips[trip].ShapeIndex;
            var result = new float[rows.Length];
            if (shape < 0)
            {
                // No shape: distance along the line through the stops.
                double total = 0;
                for (var i = 1; i < rows.Length; i++)
                {
                    var a = _stops[rows[i - 1].Stop];
                    var b = _stops[rows[i].Stop];
                    if (!double.IsNaN(a.Latitude) && !double.IsNaN(b.Latitude))
                    {
                        var (ax, ay) = _projection.ToLocal(a.Latitude, a.Longitude);
                        var (bx, by) = _projection.ToLocal(b.Latitude, b.Longitude);
                        total += Math.Sqrt(((bx - ax) * (bx - ax)) + ((by - ay) * (by - ay)));
                    }

                    result[i] = (float)total;
                }

                return result;
            }

            var from = _shapeFirst[shape];
            var to = _shapeFirst[shape + 1];
            var path = _shapePaths[shape] ??= new ShapePath(_projection, _shapeX[from..to], _shapeY[from..to], fromStops: false);
            var feedDist = _shapeFeedDist.AsSpan(from, to - from);
            var allStopDist = true;
            foreach (var r in rows)
            {
                allStopDist &= !float.IsNaN(r.FeedDistance);
            }

            if (allStopDist && !HasNaN(feedDist) && IsNonDecreasing(feedDist))
            {
                // shape_dist_traveled in the feed's own unit, mapped onto metres along the geometry.
                var metres = path.Cumulative;
                for (var i = 0; i < rows.Length; i++)
                {
                    result[i] = (float)MapDistance(feedDist, metres, rows[i].FeedDistance);
                }

                return result;
            }

            // Project the stops onto the shape in order; trips that share shape and stops share the work.
            var hash = new HashCode();
            foreach (var r in rows)
            {
                hash.Add(r.Stop);
            }

            var key = new PatternKey(shape, rows.Length, hash.ToHashCode());
            if (patterns.TryGetValue(key, out var cached))
            {
                return cached;
            }

            var xs = new double[rows.Length];
            var ys = new double[rows.Length];
            for (var i = 0; i < rows.Length; i++)
            {
                var s = _stops[rows[i].Stop];
                (xs[i], ys[i]) = double.IsNaN(s.Latitude) ? (xs[Math.Max(0, i - 1)], ys[Math.Max(0, i - 1)]) : _projection.ToLocal(s.Latitude, s.Longitude);
            }

            path.ProjectInOrder(xs, ys, result);
            patterns[key] = result;
            return result;
        }

        private static bool HasNaN(ReadOnlySpan<double> values)
        {
            foreach (var v in values)
            {
                if (double.IsNaN(v))
                {
                    return true;
                }
            }

            return false;
        }

        private static bool IsNonDecreasing(ReadOnlySpan<double> values)
        {
            for (var i = 1; i < values.Length; i++)
            {
                if (values[i] < values[i - 1])
                {
                    return false;
                }
            }

            return values.Length > 0;
        }

        private static double MapDistance(ReadOnlySpan<double> feed, ReadOnlySpan<double> metres, double d)
        {
            if (d <= feed[0])
            {
                return metres[0];
            }

            if (d >= feed[^1])
            {
                return metres[^1];
            }

            var i = feed.BinarySearch(d);
            if (i >= 0)
            {
                return metres[i];
            }

            i = ~i; // feed[i-1] < d < feed[i]
            var span = feed[i] - feed[i - 1];
            var t = span > 0 ? (d - feed[i - 1]) / span : 0;
            return metres[i - 1] + (t * (metres[i] - metres[i - 1]));
        }

        // ---------------------------------------------------------------- frequencies.txt
        private (Frequency[] Frequencies, int[] Start, int[] Count) LoadFrequencies()
        {
            var start = new int[_trips.Count];
            var count = new int[_trips.Count];
            var csv = Open("frequencies.txt", required: false);
            if (csv is null)
            {
                return ([], start, count);
            }

            var cTrip = RequireColumn(csv, "trip_id");
            var cStart = RequireColumn(csv, "start_time");
            var cEnd = RequireColumn(csv, "end_time");
            var cHeadway = RequireColumn(csv, "headway_secs");
            var cExact = csv.IndexOf("exact_times");
            var rows = new List<(int Trip, Frequency F)>();
            while (csv.Read())
            {
                var tripText = csv[cTrip].Trim();
                if (!_tripIndex.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(tripText, out var trip))
                {
                    Issue(csv, "unknown_trip", $"trip_id '{tripText}' is not in trips.txt");
                    continue;
                }

                if (!ServiceTime.TryParse(csv[cStart], out var from) || !ServiceTime.TryParse(csv[cEnd], out var to))
                {
                    Issue(csv, "bad_time", $"start_time '{csv[cStart]}' / end_time '{csv[cEnd]}' of trip '{tripText}' is not H:MM:SS");
                    continue;
                }

                if (!int.TryParse(csv[cHeadway].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var headway) || headway <= 0)
                {
                    Issue(csv, "bad_value", $"headway_secs '{csv[cHeadway]}' of trip '{tripText}' is not a positive integer");
                    continue;
                }

                if (to <= from)
                {
                    Issue(csv, "bad_time", $"end_time of trip '{tripText}' is not after start_time");
                    continue;
                }

                rows.Add((trip, new Frequency(from, to, headway, csv[cExact].Trim().SequenceEqual("1"))));
            }

            rows.Sort((a, b) => a.Trip != b.Trip ? a.Trip.CompareTo(b.Trip) : a.F.Start.CompareTo(b.F.Start));
            var result = new Frequency[rows.Count];
            for (var i = 0; i < rows.Count; i++)
            {
                var t = rows[i].Trip;
                if (count[t] == 0)
                {
                    start[t] = i;
                }

                count[t]++;
                result[i] = rows[i].F;
            }

            return (result, start, count);
        }

        // ---------------------------------------------------------------- helpers
        private CsvReader? Open(string file, bool required)
        {
            var text = source.ReadText(file);
            if (text is null)
            {
                return required ? throw new GtfsFormatException($"required file '{file}' is missing from GTFS feed '{source.Description}'") : null;
            }

            return new CsvReader(file, text);
        }

        private int RequireColumn(CsvReader csv, string column)
        {
            var i = csv.IndexOf(column);
            return i >= 0 ? i : throw new GtfsFormatException($"{csv.FileName} of '{source.Description}' has no '{column}' column (required)");
        }

        private void Issue(CsvReader csv, string kind, string message) => _report.Add(csv.FileName, csv.LineNumber, kind, message);

        private int ParseTime(CsvReader csv, int column, string name)
        {
            var text = csv[column];
            if (text.IsWhiteSpace())
            {
                return -1;
            }

            if (ServiceTime.TryParse(text, out var t))
            {
                return t.TotalSeconds;
            }

            Issue(csv, "bad_time", $"{name} '{text}' is not H:MM:SS; treated as empty and interpolated");
            return -1;
        }

        private static byte SmallCode(ReadOnlySpan<char> text)
        {
            text = text.Trim();
            return text.Length == 1 && text[0] is >= '0' and <= '3' ? (byte)(text[0] - '0') : (byte)0;
        }

        private static bool TryDouble(ReadOnlySpan<char> text, out double value)
        {
            text = text.Trim();
            if (text.IsEmpty)
            {
                value = double.NaN;
                return false;
            }

            return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value) && double.IsFinite(value);
        }

        private static bool TryDate(ReadOnlySpan<char> text, out DateOnly date) =>
            DateOnly.TryParseExact(text.Trim(), "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out date);
    }
}
