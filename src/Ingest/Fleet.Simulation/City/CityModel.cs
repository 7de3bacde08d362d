namespace Fleet.Simulation.City;

/// <summary>Local flat projection around the city centre: metres east (x) and north (y) to WGS84.</summary>
/// <param name="OriginLatitude">Latitude of the point x = 0, y = 0.</param>
/// <param name="OriginLongitude">Longitude of the point x = 0, y = 0.</param>
public readonly record struct GeoProjection(double OriginLatitude, double OriginLongitude)
{
    private const double MetresPerDegree = 111_320.0;

    /// <summary>Latitude of a point y metres north of the origin.</summary>
    public double Latitude(double y) => OriginLatitude + (y / MetresPerDegree);

    /// <summary>Longitude of a point x metres east of the origin.</summary>
    public double Longitude(double x) => OriginLongitude + (x / (MetresPerDegree * Math.Cos(OriginLatitude * Math.PI / 180.0)));
}

/// <summary>
/// A street grid: intersections (nodes) on jittered rows and columns, and directed street segments (edges)
/// between neighbouring intersections.
/// </summary>
/// <remarks>
/// Edge ids are <c>node * 4 + direction</c> with direction 0 east, 1 north, 2 west, 3 south, so an edge's
/// reverse and its end node are arithmetic. Immutable after construction; safe to share between threads.
/// </remarks>
public sealed class StreetNetwork
{
    /// <summary>Creates a network; arrays are owned by the instance.</summary>
    public StreetNetwork(int columns, int rows, double[] nodeX, double[] nodeY, bool[] signalized, double[] signalOffset,
        string[] columnStreets, string[] rowStreets, GeoProjection projection)
    {
        Columns = columns;
        Rows = rows;
        NodeX = nodeX;
        NodeY = nodeY;
        Signalized = signalized;
        SignalOffset = signalOffset;
        ColumnStreets = columnStreets;
        RowStreets = rowStreets;
        Projection = projection;
        var edgeCount = columns * rows * 4;
        EdgeLength = new double[edgeCount];
        FreeSpeed = new double[edgeCount];
        Inbound = new double[edgeCount];
        Centrality = new double[edgeCount];
        var cx = (nodeX[0] + nodeX[^1]) / 2;
        var cy = (nodeY[0] + nodeY[^1]) / 2;
        var radius = Math.Max(1, Math.Sqrt(((nodeX[^1] - cx) * (nodeX[^1] - cx)) + ((nodeY[^1] - cy) * (nodeY[^1] - cy))));
        for (var e = 0; e < edgeCount; e++)
        {
            var to = EdgeTo(e);
            if (to < 0)
            {
                continue;
            }

            var from = EdgeFrom(e);
            var dx = nodeX[to] - nodeX[from];
            var dy = nodeY[to] - nodeY[from];
            var len = Math.Sqrt((dx * dx) + (dy * dy));
            EdgeLength[e] = len;
            var (i, j) = (from % columns, from / columns);
            // Every fourth street is an arterial: faster when free, but it is also where the peak bites.
            var arterial = (e & 1) == 0 ? j % 4 == 0 : i % 4 == 0;
            FreeSpeed[e] = arterial ? 12.5 : 10.0;
            var mx = (nodeX[to] + nodeX[from]) / 2;
            var my = (nodeY[to] + nodeY[from]) / 2;
            var rx = cx - mx;
            var ry = cy - my;
            var r = Math.Sqrt((rx * rx) + (ry * ry));
            Inbound[e] = r < 1 ? 0 : ((dx * rx) + (dy * ry)) / (len * r);
            Centrality[e] = Math.Clamp(1.2 - (0.7 * r / radius), 0.4, 1.2) * (arterial ? 1.15 : 1.0);
        }
    }

    /// <summary>Number of north-south streets.</summary>
    public int Columns { get; }

    /// <summary>Number of east-west streets.</summary>
    public int Rows { get; }

    /// <summary>Node x in metres east of the projection origin.</summary>
    public double[] NodeX { get; }

    /// <summary>Node y in metres north of the projection origin.</summary>
    public double[] NodeY { get; }

    /// <summary>True where the intersection has traffic lights.</summary>
    public bool[] Signalized { get; }

    /// <summary>Offset of each signal's cycle in seconds.</summary>
    public double[] SignalOffset { get; }

    /// <summary>Names of the north-south streets, by column.</summary>
    public string[] ColumnStreets { get; }

    /// <summary>Names of the east-west streets, by row.</summary>
    public string[] RowStreets { get; }

    /// <summary>Projection from metres to WGS84.</summary>
    public GeoProjection Projection { get; }

    /// <summary>Length of each directed edge in metres (0 for edges off the grid).</summary>
    public double[] EdgeLength { get; }

    /// <summary>Free-flow bus cruising speed of each edge in m/s.</summary>
    public double[] FreeSpeed { get; }

    /// <summary>Cosine between the edge's direction and the direction to the centre (1 = straight inbound).</summary>
    public double[] Inbound { get; }

    /// <summary>How central (and so how sensitive to the peaks) an edge is, about 0.4 to 1.4.</summary>
    public double[] Centrality { get; }

    /// <summary>Node index of column i, row j.</summary>
    public int Node(int i, int j) => (j * Columns) + i;

    /// <summary>Start node of a directed edge.</summary>
    public static int EdgeFrom(int edge) => edge >> 2;

    /// <summary>Direction of a directed edge: 0 east, 1 north, 2 west, 3 south.</summary>
    public static int EdgeDirection(int edge) => edge & 3;

    /// <summary>The same street segment driven the other way.</summary>
    public int Reverse(int edge) => (EdgeTo(edge) * 4) + ((EdgeDirection(edge) + 2) & 3);

    /// <summary>End node of a directed edge, or -1 when it leaves the grid.</summary>
    public int EdgeTo(int edge)
    {
        var from = EdgeFrom(edge);
        var (i, j) = (from % Columns, from / Columns);
        return EdgeDirection(edge) switch
        {
            0 => i + 1 < Columns ? from + 1 : -1,
            1 => j + 1 < Rows ? from + Columns : -1,
            2 => i > 0 ? from - 1 : -1,
            _ => j > 0 ? from - Columns : -1,
        };
    }

    /// <summary>The directed edge from node a to its neighbour b.</summary>
    public int EdgeBetween(int a, int b)
    {
        for (var d = 0; d < 4; d++)
        {
            if (EdgeTo((a * 4) + d) == b)
            {
                return (a * 4) + d;
            }
        }

        throw new ArgumentException($"nodes {a} and {b} are not neighbours");
    }

    /// <summary>Name of the street an edge runs along.</summary>
    public string StreetOf(int edge)
    {
        var from = EdgeFrom(edge);
        return (EdgeDirection(edge) & 1) == 0 ? RowStreets[from / Columns] : ColumnStreets[from % Columns];
    }
}

/// <summary>A bus stop: one side of one street segment.</summary>
public sealed class Stop
{
    /// <summary>Index in <see cref="CityModel.Stops"/>.</summary>
    public required int Index { get; init; }

    /// <summary>GTFS stop_id, seven digits as in HSL.</summary>
    public required string Id { get; init; }

    /// <summary>Numeric form of <see cref="Id"/> (the HFP <c>stop</c> field is a number).</summary>
    public required int Number { get; init; }

    /// <summary>Human-readable name.</summary>
    public required string Name { get; init; }

    /// <summary>Position in metres (x east).</summary>
    public required double X { get; init; }

    /// <summary>Position in metres (y north).</summary>
    public required double Y { get; init; }

    /// <summary>The directed edge the stop is on.</summary>
    public required int Edge { get; init; }

    /// <summary>Where along the edge, 0 to 1.</summary>
    public required double Fraction { get; init; }

    /// <summary>Passengers per minute arriving for each route serving the stop, before the time-of-day factor.</summary>
    public required double Demand { get; init; }

    /// <summary>Relative pull for alighting passengers (0.5 to 2).</summary>
    public required double Attraction { get; init; }
}

/// <summary>A route: two patterns (directions), an operator and its display fields.</summary>
public sealed class Route
{
    /// <summary>Index in <see cref="CityModel.Routes"/>.</summary>
    public required int Index { get; init; }

    /// <summary>GTFS route_id and HFP <c>route</c> (four digits, as HSL).</summary>
    public required string Id { get; init; }

    /// <summary>GTFS route_short_name and HFP <c>desi</c>.</summary>
    public required string ShortName { get; init; }

    /// <summary>HFP <c>line</c> number.</summary>
    public required int Line { get; init; }

    /// <summary>Operator number (HFP <c>oper</c>).</summary>
    public required int Operator { get; init; }

    /// <summary>Direction 0 and direction 1 (HFP dir 1 and 2).</summary>
    public Pattern[] Patterns { get; } = new Pattern[2];

    /// <summary>Peak headway in seconds.</summary>
    public int PeakHeadwaySeconds { get; set; }
}

/// <summary>One direction of a route: the street path, its shape and its stops.</summary>
public sealed class Pattern
{
    /// <summary>The route.</summary>
    public required Route Route { get; init; }

    /// <summary>GTFS direction_id (0 or 1).</summary>
    public required int Direction { get; init; }

    /// <summary>Headsign (destination), without spaces so it fits an HFP topic level as one word.</summary>
    public required string Headsign { get; init; }

    /// <summary>GTFS shape_id.</summary>
    public required string ShapeId { get; init; }

    /// <summary>The path as nodes (one more than <see cref="Edges"/>).</summary>
    public required int[] Nodes { get; init; }

    /// <summary>The path as directed edges.</summary>
    public required int[] Edges { get; init; }

    /// <summary>Distance along the path of each node in metres.</summary>
    public required double[] NodeDistance { get; init; }

    /// <summary>The stops in order (indexes into <see cref="CityModel.Stops"/>).</summary>
    public required int[] Stops { get; init; }

    /// <summary>Distance along the path of each stop in metres.</summary>
    public required double[] StopDistance { get; init; }

    /// <summary>Whether the stop is a timing point (early buses wait there).</summary>
    public required bool[] Timepoint { get; init; }

    /// <summary>Total length in metres.</summary>
    public double Length => NodeDistance[^1];
}

/// <summary>A scheduled trip.</summary>
public sealed class Trip
{
    /// <summary>Index in <see cref="CityModel.Trips"/>.</summary>
    public required int Index { get; init; }

    /// <summary>GTFS trip_id.</summary>
    public required string Id { get; init; }

    /// <summary>The pattern it runs.</summary>
    public required Pattern Pattern { get; init; }

    /// <summary>Scheduled arrival per stop, seconds after local midnight of the operating day.</summary>
    public required int[] Arrival { get; init; }

    /// <summary>Scheduled departure per stop, seconds after local midnight of the operating day.</summary>
    public required int[] Departure { get; init; }

    /// <summary>HFP <c>jrn</c>: journey number.</summary>
    public required int JourneyNumber { get; init; }

    /// <summary>Index of the block (vehicle duty) that runs it.</summary>
    public int Block { get; set; } = -1;

    /// <summary>Scheduled start, seconds after local midnight.</summary>
    public int StartSeconds => Departure[0];
}

/// <summary>A block: the chain of trips one vehicle runs.</summary>
public sealed class Block
{
    /// <summary>Index in <see cref="CityModel.Blocks"/>.</summary>
    public required int Index { get; init; }

    /// <summary>GTFS block_id.</summary>
    public required string Id { get; init; }

    /// <summary>The route it serves.</summary>
    public required Route Route { get; init; }

    /// <summary>Trips in time order.</summary>
    public List<Trip> Trips { get; } = [];

    /// <summary>
    /// True when the bus ran trips of this block that ended before the window opened (not in the schedule): it is
    /// already out, waiting at the terminal, when the window opens.
    /// </summary>
    public bool OutBeforeWindow { get; set; }
}

/// <summary>
/// A generated city: network, stops, routes, schedule. Everything GTFS static says, plus what the dynamics need.
/// </summary>
/// <remarks>Immutable once built by <see cref="CityBuilder"/>; safe to share between threads.</remarks>
public sealed class CityModel
{
    /// <summary>Creates the model (used by <see cref="CityBuilder"/>).</summary>
    public CityModel(GenerateOptions options, TimeZoneInfo timeZone, StreetNetwork network, IReadOnlyList<Stop> stops,
        IReadOnlyList<Route> routes, IReadOnlyList<Trip> trips, IReadOnlyList<Block> blocks)
    {
        Options = options;
        TimeZone = timeZone;
        Network = network;
        Stops = stops;
        Routes = routes;
        Trips = trips;
        Blocks = blocks;
        // GTFS counts service times from "noon minus 12 h", which is midnight except on daylight-saving days.
        var noon = options.Date.ToDateTime(new TimeOnly(12, 0), DateTimeKind.Unspecified);
        ServiceDayStartUtc = TimeZoneInfo.ConvertTimeToUtc(noon, timeZone).AddHours(-12);
        WindowStartSeconds = (int)options.Start.ToTimeSpan().TotalSeconds;
        WindowEndSeconds = WindowStartSeconds + (int)Math.Round(options.Hours * 3600);
    }

    /// <summary>The options the city was built from.</summary>
    public GenerateOptions Options { get; }

    /// <summary>The agency's time zone.</summary>
    public TimeZoneInfo TimeZone { get; }

    /// <summary>The street network.</summary>
    public StreetNetwork Network { get; }

    /// <summary>Every stop, ordered by id.</summary>
    public IReadOnlyList<Stop> Stops { get; }

    /// <summary>Every route.</summary>
    public IReadOnlyList<Route> Routes { get; }

    /// <summary>Every trip, ordered by route, direction and start.</summary>
    public IReadOnlyList<Trip> Trips { get; }

    /// <summary>Every block.</summary>
    public IReadOnlyList<Block> Blocks { get; }

    /// <summary>UTC instant the operating day's service times count from (local noon minus 12 h, as GTFS).</summary>
    public DateTime ServiceDayStartUtc { get; }

    /// <summary>Start of the service window, seconds after local midnight.</summary>
    public int WindowStartSeconds { get; }

    /// <summary>End of the service window, seconds after local midnight.</summary>
    public int WindowEndSeconds { get; }

    /// <summary>UTC time of a service-day second.</summary>
    public DateTime ToUtc(double serviceSeconds) => ServiceDayStartUtc.AddTicks((long)Math.Round(serviceSeconds * TimeSpan.TicksPerSecond));
}
