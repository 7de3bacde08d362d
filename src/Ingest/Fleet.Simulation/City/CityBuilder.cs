using System.Globalization;

namespace Fleet.Simulation.City;

/// <summary>
/// Builds a <see cref="CityModel"/> from <see cref="GenerateOptions"/>: a jittered street grid, routes that wind
/// through it, stops every 300 to 600 m, and a timetable whose headways follow the time of day.
/// </summary>
/// <remarks>
/// Uses only <see cref="GenerateOptions.City"/> and the size options for randomness (never the seed), so every
/// seed of a city has the same network and schedule. Stateless; thread-safe.
/// </remarks>
public static class CityBuilder
{
    private const double MinStopGap = 300;
    private const double MaxStopGap = 600;
    private const int LayoverPlanSeconds = 240;
    private const int MinLayoverSeconds = 150;

    private static readonly string[] ColumnNames =
    [
        "Koivu", "Mänty", "Kuusi", "Tammi", "Vaahtera", "Pihlaja", "Haapa", "Leppä", "Saarni", "Lehmus", "Kataja",
        "Raita", "Omena", "Kirsikka", "Luumu", "Tuomi", "Sireeni", "Ruusu", "Kielo", "Orvokki", "Lilja", "Kanerva",
        "Kaisla", "Pajun", "Sammal", "Jäkälä", "Kallio", "Hiekka", "Savi", "Kivi", "Ranta", "Niitty", "Pelto",
        "Aho", "Metsä", "Harju", "Mäki", "Laakso", "Lähde", "Puro",
    ];

    private static readonly string[] Districts =
    [
        "Keskusta", "Pohjola", "Itäranta", "Länsimäki", "Etelälahti", "Koivula", "Kuusikko", "Peltola", "Myllypuro",
        "Saarela", "Rantala", "Mäntyniemi", "Kalliola", "Harjula", "Niittykumpu", "Tammisto",
    ];

    /// <summary>Builds the city. Throws <see cref="ArgumentOutOfRangeException"/> for invalid options.</summary>
    public static CityModel Build(GenerateOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var tz = TimeZoneInfo.FindSystemTimeZoneById(options.TimeZoneId);
        var city = (ulong)options.City;
        var size = Math.Min(70, 22 + (options.Routes / 5));
        var network = BuildNetwork(city, size);

        var stopsByKey = new SortedDictionary<int, Stop>();
        var stopSeed = SimRandom.Mix(city, 2);
        var routes = new List<Route>();
        var shortNames = PickShortNames(city, options.Routes);
        var districtOrder = Shuffled(SimRandom.Create(city, 3), Districts);
        for (var r = 0; r < options.Routes; r++)
        {
            var rng = SimRandom.Create(city, 4, (ulong)r);
            var path = PlanPath(network, rng, r);
            var shortName = shortNames[r];
            var route = new Route
            {
                Index = r,
                Id = (1000 + int.Parse(shortName, CultureInfo.InvariantCulture)).ToString(CultureInfo.InvariantCulture),
                ShortName = shortName,
                Line = 1000 + r,
                Operator = new[] { 12, 18, 22 }[(int)(SimRandom.Mix(city, 5, (ulong)r) % 3)],
            };
            var reversed = path.AsEnumerable().Reverse().ToArray();
            var endName = DistrictOf(network, path[^1], districtOrder);
            var startName = DistrictOf(network, path[0], districtOrder);
            if (endName == startName)
            {
                endName += "nportti";
            }

            route.Patterns[0] = BuildPattern(network, route, 0, path, endName, stopsByKey, stopSeed);
            route.Patterns[1] = BuildPattern(network, route, 1, reversed, startName, stopsByKey, stopSeed);
            routes.Add(route);
        }

        var stops = new List<Stop>(stopsByKey.Count);
        var indexByKey = new Dictionary<int, int>();
        foreach (var (key, stop) in stopsByKey)
        {
            indexByKey[key] = stops.Count;
            stops.Add(new Stop
            {
                Index = stops.Count, Id = stop.Id, Number = stop.Number, Name = stop.Name, X = stop.X, Y = stop.Y,
                Edge = stop.Edge, Fraction = stop.Fraction, Demand = stop.Demand, Attraction = stop.Attraction,
            });
        }

        // Patterns were built with stop keys; turn them into indexes now that the stop list is sorted.
        foreach (var route in routes)
        {
            foreach (var p in route.Patterns)
            {
                for (var k = 0; k < p.Stops.Length; k++)
                {
                    p.Stops[k] = indexByKey[p.Stops[k]];
                }
            }
        }

        var (trips, blocks) = BuildSchedule(options, network, routes);
        return new CityModel(options, tz, network, stops, routes, trips, blocks);
    }

    private static StreetNetwork BuildNetwork(ulong city, int size)
    {
        var rng = SimRandom.Create(city, 1);
        var xs = new double[size];
        var ys = new double[size];
        for (var k = 1; k < size; k++)
        {
            xs[k] = xs[k - 1] + rng.Uniform(230, 330);
            ys[k] = ys[k - 1] + rng.Uniform(230, 330);
        }

        var nodeX = new double[size * size];
        var nodeY = new double[size * size];
        var signalized = new bool[size * size];
        var offset = new double[size * size];
        for (var j = 0; j < size; j++)
        {
            for (var i = 0; i < size; i++)
            {
                var n = (j * size) + i;
                nodeX[n] = xs[i] - (xs[^1] / 2) + rng.Uniform(-18, 18);
                nodeY[n] = ys[j] - (ys[^1] / 2) + rng.Uniform(-18, 18);
                var arterialCrossing = i % 4 == 0 || j % 4 == 0;
                signalized[n] = rng.Chance(arterialCrossing ? 0.7 : 0.25);
                offset[n] = rng.Uniform(0, 90);
            }
        }

        var columnStreets = new string[size];
        var rowStreets = new string[size];
        var names = Shuffled(rng, ColumnNames);
        for (var k = 0; k < size; k++)
        {
            var stem = names[k % names.Length];
            var prefix = k >= names.Length ? "Uusi" : string.Empty;
            columnStreets[k] = prefix + (prefix.Length > 0 ? stem.ToLowerInvariant() : stem) + (k % 4 == 0 ? "nkatu" : "katu");
            var rowStem = names[(k + (names.Length / 2)) % names.Length];
            rowStreets[k] = (k >= names.Length ? "Ala" : string.Empty) + (k >= names.Length ? rowStem.ToLowerInvariant() : rowStem) + (k % 4 == 0 ? "nväylä" : "ntie");
        }

        // City 1 sits on Helsinki; other cities are shifted a little so that maps of two cities differ.
        var projection = new GeoProjection(60.17 + (0.01 * (city % 7)), 24.94 + (0.02 * (city % 5)));
        return new StreetNetwork(size, size, nodeX, nodeY, signalized, offset, columnStreets, rowStreets, projection);
    }

    private static int[] PlanPath(StreetNetwork net, SimRandom rng, int routeIndex)
    {
        var n = net.Columns;
        for (var attempt = 0; ; attempt++)
        {
            var alongX = routeIndex % 2 == 0;
            var flip = rng.Chance(0.5);
            var kind = rng.NextDouble();
            var a = (u: rng.NextInt(0, 3), v: rng.NextInt(2, n - 2));
            (int u, int v) via = kind < 0.6
                ? (n / 2 + rng.NextInt(-2, 3), n / 2 + rng.NextInt(-2, 3))
                : (n / 2 + rng.NextInt(-3, 4), Math.Clamp(a.v + rng.NextInt(-4, 5), 1, n - 2));
            (int u, int v) b = kind > 0.85
                ? (via.u + rng.NextInt(2, 5), Math.Clamp(via.v + rng.NextInt(-3, 4), 1, n - 2))
                : (n - 1 - rng.NextInt(0, 3), rng.NextInt(2, n - 2));
            var uv = new List<(int u, int v)> { a };
            Walk(uv, via, rng);
            Walk(uv, b, rng);
            var nodes = uv.Select(p =>
            {
                var u = flip ? n - 1 - p.u : p.u;
                return alongX ? net.Node(u, p.v) : net.Node(p.v, u);
            }).ToArray();
            if (nodes.Distinct().Count() == nodes.Length && nodes.Length >= 12)
            {
                return nodes;
            }

            if (attempt > 200)
            {
                throw new InvalidOperationException($"no path for route {routeIndex}");
            }
        }
    }

    private static void Walk(List<(int u, int v)> path, (int u, int v) target, SimRandom rng)
    {
        var axis = rng.NextInt(0, 2);
        while (path[^1] != target)
        {
            var (u, v) = path[^1];
            var du = Math.Sign(target.u - u);
            var dv = Math.Sign(target.v - v);
            if (du == 0)
            {
                axis = 1;
            }
            else if (dv == 0)
            {
                axis = 0;
            }
            else if (rng.Chance(0.22))
            {
                axis = 1 - axis;
            }

            path.Add(axis == 0 ? (u + du, v) : (u, v + dv));
        }
    }

    private static Pattern BuildPattern(StreetNetwork net, Route route, int direction, int[] nodes, string headsign,
        SortedDictionary<int, Stop> stops, ulong stopSeed)
    {
        var edges = new int[nodes.Length - 1];
        var nodeDistance = new double[nodes.Length];
        for (var k = 0; k < edges.Length; k++)
        {
            edges[k] = net.EdgeBetween(nodes[k], nodes[k + 1]);
            nodeDistance[k + 1] = nodeDistance[k] + net.EdgeLength[edges[k]];
        }

        // Candidate stops: the regular ones (every other block of every street, both sides) ...
        var chosen = new List<(int key, double dist)>();
        var first = StopKey(edges[0], 2);
        chosen.Add((first, nodeDistance[0] + (0.12 * net.EdgeLength[edges[0]])));
        var lastDist = nodeDistance[^2] + (0.88 * net.EdgeLength[edges[^1]]);
        for (var k = 1; k < edges.Length - 1; k++)
        {
            var e = edges[k];
            if (!IsRegularStopEdge(net, e))
            {
                continue;
            }

            var d = nodeDistance[k] + (RegularFraction(net, e) * net.EdgeLength[e]);
            if (d - chosen[^1].dist >= MinStopGap && lastDist - d >= MinStopGap)
            {
                chosen.Add((StopKey(e, 0), d));
            }
        }

        chosen.Add((StopKey(edges[^1], 3), lastDist));

        // ... then fill gaps longer than 600 m with a stop mid-block on the edge nearest the gap's middle.
        for (var g = 0; g < chosen.Count - 1; g++)
        {
            var gap = chosen[g + 1].dist - chosen[g].dist;
            if (gap <= MaxStopGap)
            {
                continue;
            }

            var middle = (chosen[g].dist + chosen[g + 1].dist) / 2;
            var best = -1;
            for (var k = 0; k < edges.Length; k++)
            {
                var d = nodeDistance[k] + (0.5 * net.EdgeLength[edges[k]]);
                if (d - chosen[g].dist >= 200 && chosen[g + 1].dist - d >= 200
                    && (best < 0 || Math.Abs(d - middle) < Math.Abs(nodeDistance[best] + (0.5 * net.EdgeLength[edges[best]]) - middle)))
                {
                    best = k;
                }
            }

            if (best >= 0)
            {
                chosen.Insert(g + 1, (StopKey(edges[best], 1), nodeDistance[best] + (0.5 * net.EdgeLength[edges[best]])));
            }
        }

        foreach (var (key, _) in chosen)
        {
            if (!stops.ContainsKey(key))
            {
                stops[key] = MakeStop(net, key, stopSeed);
            }
        }

        var timepoint = new bool[chosen.Count];
        for (var k = 0; k < chosen.Count; k++)
        {
            timepoint[k] = k == 0 || k == chosen.Count - 1 || k % 5 == 0;
        }

        return new Pattern
        {
            Route = route,
            Direction = direction,
            Headsign = headsign,
            ShapeId = $"{route.Id}_{direction + 1}",
            Nodes = nodes,
            Edges = edges,
            NodeDistance = nodeDistance,
            Stops = chosen.Select(c => c.key).ToArray(),
            StopDistance = chosen.Select(c => c.dist).ToArray(),
            Timepoint = timepoint,
        };
    }

    private static int StopKey(int edge, int kind) => (edge * 4) + kind;

    private static bool IsRegularStopEdge(StreetNetwork net, int edge)
    {
        var from = StreetNetwork.EdgeFrom(edge);
        var to = net.EdgeTo(edge);
        var low = Math.Min(from, to);
        var (i, j) = (low % net.Columns, low / net.Columns);
        return (StreetNetwork.EdgeDirection(edge) & 1) == 0 ? i % 2 == 0 : j % 2 == 0;
    }

    private static double RegularFraction(StreetNetwork net, int edge)
    {
        // Both sides of a block get a stop at about the same place, as across a real street.
        var from = StreetNetwork.EdgeFrom(edge);
        var to = net.EdgeTo(edge);
        var f = 0.35 + (0.3 * SimRandom.Hash01(77, (ulong)Math.Min(from, to), (ulong)Math.Max(from, to)));
        return from < to ? f : 1 - f + 0.04;
    }

    private static Stop MakeStop(StreetNetwork net, int key, ulong seed)
    {
        var edge = key / 4;
        var kind = key % 4;
        var fraction = kind switch
        {
            0 => RegularFraction(net, edge),
            1 => 0.5,
            2 => 0.12,
            _ => 0.88,
        };
        var from = StreetNetwork.EdgeFrom(edge);
        var to = net.EdgeTo(edge);
        var dx = net.NodeX[to] - net.NodeX[from];
        var dy = net.NodeY[to] - net.NodeY[from];
        var len = net.EdgeLength[edge];
        // Stops sit 7 m to the right of the centre line, on the kerb of the travel direction.
        var x = net.NodeX[from] + (fraction * dx) + (7 * dy / len);
        var y = net.NodeY[from] + (fraction * dy) - (7 * dx / len);
        var cross = (StreetNetwork.EdgeDirection(edge) & 1) == 0
            ? net.ColumnStreets[(fraction < 0.5 ? from : to) % net.Columns]
            : net.RowStreets[(fraction < 0.5 ? from : to) / net.Columns];
        var number = 1_000_000 + key;
        var centrality = net.Centrality[edge];
        var stopRng = SimRandom.Create(seed, (ulong)key);
        return new Stop
        {
            Index = -1,
            Id = number.ToString(CultureInfo.InvariantCulture),
            Number = number,
            Name = $"{net.StreetOf(edge)}/{cross}",
            X = x,
            Y = y,
            Edge = edge,
            Fraction = fraction,
            Demand = Math.Exp(0.9 * stopRng.NextNormal()) * 0.3 * centrality * (kind >= 2 ? 1.6 : 1.0),
            Attraction = Math.Clamp(Math.Exp(0.5 * stopRng.NextNormal()) * centrality, 0.4, 2.5),
        };
    }

    private static (List<Trip> Trips, List<Block> Blocks) BuildSchedule(GenerateOptions options, StreetNetwork net, List<Route> routes)
    {
        var windowStart = (int)options.Start.ToTimeSpan().TotalSeconds;
        var windowEnd = windowStart + (int)Math.Round(options.Hours * 3600);

        // The fleet is sized at the window's busiest moment and shared between the routes by their cycle. A bus on the
        // road at moment T left its terminal within one run (plus the layover before it) of T, so a direction needs
        // as many buses as departures in that span: the span's length in peak-headway seconds (an off-peak second,
        // at twice the headway, counts half) over the peak headway. Runs are timed from half a run before T.
        double RunAround(Pattern pattern, int time) => RunSeconds(net, pattern, time - (RunSeconds(net, pattern, time)[^1] / 2))[^1];
        static double PeakSeconds(double from, double to)
        {
            var sum = 0.0;
            for (var t = from; t < to; t += 60)
            {
                sum += Math.Min(60, to - t) / TimeOfDay.HeadwayFactor(t);
            }

            return sum;
        }

        double[] CyclesAt(int time) => routes.Select(r => r.Patterns.Sum(p => PeakSeconds(time - RunAround(p, time) - LayoverPlanSeconds, time))).ToArray();
        var cycles = CyclesAt(windowStart);
        for (var time = windowStart + 900; time <= windowEnd; time += 900)
        {
            var at = CyclesAt(time);
            if (at.Sum() > cycles.Sum())
            {
                cycles = at;
            }
        }

        var total = cycles.Sum();
        foreach (var route in routes)
        {
            var share = Math.Max(2.0, options.Vehicles * cycles[route.Index] / total);
            route.PeakHeadwaySeconds = Math.Max(180, (int)Math.Round(cycles[route.Index] / share));
        }

        // The timetable runs before the window opens and goes on after it closes: it starts one and a half cycles early, so
        // that the buses of the window's first minutes are already out (on a trip or a layover) when it opens, and it keeps every trip
        // that runs during the window (in full, as GTFS has it). Trips that end before the window are only used to
        // chain the blocks, and a block none of whose trips touches the window is dropped.
        var trips = new List<Trip>();
        var blocks = new List<Block>();
        var journey = 1;
        foreach (var route in routes)
        {
            var rng = SimRandom.Create((ulong)options.City, 6, (ulong)route.Index);
            var routeTrips = new List<Trip>();
            var oneCycle = route.Patterns.Sum(p => RunSeconds(net, p, windowStart)[^1] + LayoverPlanSeconds);
            var scheduleStart = Math.Max(0, windowStart - (int)Math.Ceiling(1.5 * oneCycle));
            for (var dir = 0; dir < 2; dir++)
            {
                var pattern = route.Patterns[dir];
                // Departures keep the exact headway on average and leave on whole minutes (HFP's start is hh:mm).
                double next = scheduleStart + (60 * rng.NextInt(0, Math.Max(1, route.PeakHeadwaySeconds / 60)));
                while (true)
                {
                    var t = (int)Math.Round(next / 60) * 60;
                    if (t >= windowEnd)
                    {
                        break;
                    }

                    var run = RunSeconds(net, pattern, t);
                    var arrival = new int[run.Length];
                    for (var k = 0; k < run.Length; k++)
                    {
                        arrival[k] = t + (int)(Math.Round(run[k] / 60.0) * 60);
                    }

                    var local = TimeSpan.FromSeconds(t);
                    routeTrips.Add(new Trip
                    {
                        Index = -1,
                        Id = string.Create(CultureInfo.InvariantCulture, $"{route.Id}_{dir + 1}_{(int)local.TotalHours:D2}{local.Minutes:D2}"),
                        Pattern = pattern,
                        Arrival = arrival,
                        Departure = (int[])arrival.Clone(),
                        JourneyNumber = 0,
                    });
                    next += Math.Max(120, route.PeakHeadwaySeconds * TimeOfDay.HeadwayFactor(t));
                }
            }

            // Chain trips into blocks: each departure takes the vehicle that has waited longest at its terminal.
            var chains = new List<List<Trip>>();
            var waiting = new List<(int chain, int readyAt, int terminalDir)>();
            foreach (var trip in routeTrips.OrderBy(x => x.StartSeconds).ThenBy(x => x.Pattern.Direction))
            {
                var pick = -1;
                for (var w = 0; w < waiting.Count; w++)
                {
                    if (waiting[w].terminalDir == trip.Pattern.Direction && waiting[w].readyAt <= trip.StartSeconds
                        && (pick < 0 || waiting[w].readyAt < waiting[pick].readyAt))
                    {
                        pick = w;
                    }
                }

                int chain;
                if (pick >= 0)
                {
                    chain = waiting[pick].chain;
                    waiting.RemoveAt(pick);
                }
                else
                {
                    chain = chains.Count;
                    chains.Add([]);
                }

                chains[chain].Add(trip);
                waiting.Add((chain, trip.Arrival[^1] + MinLayoverSeconds, 1 - trip.Pattern.Direction));
            }

            var kept = new HashSet<Trip>();
            foreach (var chain in chains)
            {
                var inWindow = chain.Where(trip => trip.Arrival[^1] >= windowStart).ToList();
                if (inWindow.Count == 0)
                {
                    continue;
                }

                var block = new Block
                {
                    Index = blocks.Count,
                    Id = string.Create(CultureInfo.InvariantCulture, $"{route.Id}_{blocks.Count(b => b.Route == route) + 1:D2}"),
                    Route = route,
                    OutBeforeWindow = inWindow.Count < chain.Count,
                };
                blocks.Add(block);
                foreach (var trip in inWindow)
                {
                    block.Trips.Add(trip);
                    trip.Block = block.Index;
                    kept.Add(trip);
                }
            }

            foreach (var trip in routeTrips.Where(kept.Contains).OrderBy(x => x.Pattern.Direction).ThenBy(x => x.StartSeconds))
            {
                trips.Add(new Trip
                {
                    Index = trips.Count,
                    Id = trip.Id,
                    Pattern = trip.Pattern,
                    Arrival = trip.Arrival,
                    Departure = trip.Departure,
                    JourneyNumber = journey++,
                    Block = trip.Block,
                });
            }
        }

        // Blocks still hold the provisional trip objects; point them at the final ones.
        var byId = trips.ToDictionary(t => t.Id, StringComparer.Ordinal);
        foreach (var block in blocks)
        {
            for (var k = 0; k < block.Trips.Count; k++)
            {
                block.Trips[k] = byId[block.Trips[k].Id];
            }
        }

        return (trips, blocks);
    }

    /// <summary>Planned seconds from the first stop to each stop for a departure at a local time.</summary>
    internal static double[] RunSeconds(StreetNetwork net, Pattern pattern, double departure)
    {
        var result = new double[pattern.Stops.Length];
        var t = 0.0;
        var edgeIndex = 0;
        for (var k = 1; k < pattern.Stops.Length; k++)
        {
            var from = pattern.StopDistance[k - 1];
            var to = pattern.StopDistance[k];
            var d = from;
            while (d < to - 1e-6)
            {
                while (pattern.NodeDistance[edgeIndex + 1] <= d + 1e-9)
                {
                    edgeIndex++;
                }

                var e = pattern.Edges[edgeIndex];
                var segmentEnd = Math.Min(to, pattern.NodeDistance[edgeIndex + 1]);
                // The timetable assumes the average day: the time-of-day slowdown, ordinary congestion and
                // losses at lights and corners.
                var speed = net.FreeSpeed[e] * (1 - TimeOfDay.Slowdown(net.Inbound[e], net.Centrality[e], departure + t)) * 0.86 * 0.86;
                t += (segmentEnd - d) / speed;
                d = segmentEnd;
            }

            result[k] = t;
            t += 10 + (12 * TimeOfDay.Demand(departure + t) / 1.5);
        }

        return result;
    }

    private static string[] PickShortNames(ulong city, int count)
    {
        var rng = SimRandom.Create(city, 7);
        var used = new HashSet<int>();
        var names = new string[count];
        for (var k = 0; k < count; k++)
        {
            int n;
            do
            {
                n = count > 80 ? rng.NextInt(10, 1000) : rng.NextInt(10, 100);
            }
            while (!used.Add(n));
            names[k] = n.ToString(CultureInfo.InvariantCulture);
        }

        return names;
    }

    private static string DistrictOf(StreetNetwork net, int node, string[] districts)
    {
        var (i, j) = (node % net.Columns, node / net.Columns);
        var cell = (3 * (3 * j / net.Rows)) + (3 * i / net.Columns);
        return districts[cell % districts.Length];
    }

    private static T[] Shuffled<T>(SimRandom rng, IReadOnlyList<T> items)
    {
        var a = items.ToArray();
        for (var k = a.Length - 1; k > 0; k--)
        {
            var m = rng.NextInt(0, k + 1);
            (a[k], a[m]) = (a[m], a[k]);
        }

        return a;
    }
}
