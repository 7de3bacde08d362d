using NetTopologySuite.Geometries;
using NetTopologySuite.LinearReferencing;

namespace Fleet.Gtfs;

/// <summary>Where a point lies relative to a <see cref="ShapePath"/>.</summary>
/// <param name="AlongMetres">Distance along the path of the nearest point, metres from its start.</param>
/// <param name="OffMetres">Distance from the point to the path, metres (always ≥ 0).</param>
/// <param name="Segment">Index of the segment holding the nearest point.</param>
public readonly record struct PathProjection(double AlongMetres, double OffMetres, int Segment);

/// <summary>
/// The path a trip follows, in the schedule's <see cref="LocalProjection"/> (metres): an NTS
/// <see cref="LineString"/> plus cumulative distances, with projection of a WGS84 point onto it
/// (distance along and off the path), which is what map matching needs.
/// </summary>
/// <remarks>
/// Built from shapes.txt, or from the trip's stops when the trip has no shape. Created lazily by
/// <see cref="Schedule.GetPath(int)"/> and cached; immutable and thread-safe.
/// </remarks>
public sealed class ShapePath
{
    private readonly double[] _x;
    private readonly double[] _y;
    private readonly double[] _cumulative;
    private LengthIndexedLine? _indexed;

    internal ShapePath(LocalProjection projection, double[] x, double[] y, bool fromStops)
    {
        Projection = projection;
        _x = x;
        _y = y;
        FromStops = fromStops;
        _cumulative = new double[x.Length];
        for (var i = 1; i < x.Length; i++)
        {
            _cumulative[i] = _cumulative[i - 1] + Math.Sqrt(Sq(x[i] - x[i - 1]) + Sq(y[i] - y[i - 1]));
        }

        var coordinates = new Coordinate[Math.Max(x.Length, 2)];
        for (var i = 0; i < coordinates.Length; i++)
        {
            var j = Math.Min(i, x.Length - 1);
            coordinates[i] = new Coordinate(x[j], y[j]);
        }

        Line = new LineString(coordinates);
    }

    /// <summary>The projection the coordinates are in (shared by every path of the schedule).</summary>
    public LocalProjection Projection { get; }

    /// <summary>The path as an NTS line in local metres (x east, y north).</summary>
    public LineString Line { get; }

    /// <summary>True when the trip had no shape and the path joins its stops.</summary>
    public bool FromStops { get; }

    /// <summary>Total length, metres.</summary>
    public double LengthMetres => _cumulative[^1];

    /// <summary>Number of vertices.</summary>
    public int VertexCount => _x.Length;

    /// <summary>Projects a WGS84 point onto the whole path.</summary>
    public PathProjection Project(double latitude, double longitude) =>
        Project(latitude, longitude, 0, double.PositiveInfinity);

    /// <summary>
    /// Projects a WGS84 point onto the part of the path between <paramref name="fromMetres"/> and
    /// <paramref name="toMetres"/> (a window around the last known position keeps loops and out-and-back
    /// routes unambiguous).
    /// </summary>
    public PathProjection Project(double latitude, double longitude, double fromMetres, double toMetres)
    {
        var (px, py) = Projection.ToLocal(latitude, longitude);
        return ProjectLocal(px, py, fromMetres, toMetres);
    }

    /// <summary>Projects a point given in local metres; see <see cref="Project(double, double, double, double)"/>.</summary>
    public PathProjection ProjectLocal(double px, double py, double fromMetres, double toMetres)
    {
        var n = _x.Length;
        if (n == 1)
        {
            return new PathProjection(0, Math.Sqrt(Sq(px - _x[0]) + Sq(py - _y[0])), 0);
        }

        var first = Math.Max(0, SegmentAt(fromMetres));
        var bestD2 = double.PositiveInfinity;
        var bestAlong = 0.0;
        var bestSeg = first;
        for (var s = first; s < n - 1; s++)
        {
            if (_cumulative[s] > toMetres)
            {
                break;
            }

            var (along, d2) = ProjectOnSegment(s, px, py);
            along = Math.Clamp(along, fromMetres, toMetres);
            if (d2 < bestD2)
            {
                bestD2 = d2;
                bestAlong = along;
                bestSeg = s;
            }
        }

        return new PathProjection(bestAlong, Math.Sqrt(bestD2), bestSeg);
    }

    /// <summary>The WGS84 point at <paramref name="alongMetres"/> from the start (clamped to the path).</summary>
    public (double Latitude, double Longitude) PointAt(double alongMetres)
    {
        _indexed ??= new LengthIndexedLine(Line);
        var c = _indexed.ExtractPoint(Math.Clamp(alongMetres, 0, LengthMetres));
        return Projection.ToWgs84(c.X, c.Y);
    }

    /// <summary>
    /// Projects stops in order onto the path, each no earlier than the previous one, returning metres along.
    /// A small bias toward earlier matches keeps a terminus at both ends of a loop on the right end.
    /// </summary>
    internal void ProjectInOrder(ReadOnlySpan<double> xs, ReadOnlySpan<double> ys, Span<float> result)
    {
        const double EarlierBias = 0.01;
        var seg = 0;
        var prevAlong = 0.0;
        var n = _x.Length;
        for (var i = 0; i < xs.Length; i++)
        {
            if (n == 1)
            {
                result[i] = 0;
                continue;
            }

            var bestScore = double.PositiveInfinity;
            var bestSeg = seg;
            var bestAlong = prevAlong;
            for (var s = seg; s < n - 1; s++)
            {
                var (along, d2) = ProjectOnSegment(s, xs[i], ys[i]);
                if (along < prevAlong)
                {
                    along = prevAlong;
                    d2 = Sq(xs[i] - XAt(s, along)) + Sq(ys[i] - YAt(s, along));
                }

                var score = Math.Sqrt(d2) + (EarlierBias * (along - prevAlong));
                if (score < bestScore)
                {
                    bestScore = score;
                    bestSeg = s;
                    bestAlong = along;
                }
            }

            seg = bestSeg;
            prevAlong = bestAlong;
            result[i] = (float)bestAlong;
        }
    }

    /// <summary>Cumulative metres at each vertex.</summary>
    internal ReadOnlySpan<double> Cumulative => _cumulative;

    private int SegmentAt(double metres)
    {
        if (metres <= 0)
        {
            return 0;
        }

        var i = Array.BinarySearch(_cumulative, metres);
        if (i < 0)
        {
            i = ~i - 1;
        }

        return Math.Min(i, _x.Length - 2);
    }

    private (double Along, double D2) ProjectOnSegment(int s, double px, double py)
    {
        var ax = _x[s];
        var ay = _y[s];
        var dx = _x[s + 1] - ax;
        var dy = _y[s + 1] - ay;
        var len2 = (dx * dx) + (dy * dy);
        var t = len2 > 0 ? Math.Clamp((((px - ax) * dx) + ((py - ay) * dy)) / len2, 0, 1) : 0;
        var qx = ax + (t * dx);
        var qy = ay + (t * dy);
        return (_cumulative[s] + (t * (_cumulative[s + 1] - _cumulative[s])), Sq(px - qx) + Sq(py - qy));
    }

    private double XAt(int s, double along) => Lerp(_x[s], _x[s + 1], s, along);

    private double YAt(int s, double along) => Lerp(_y[s], _y[s + 1], s, along);

    private double Lerp(double a, double b, int s, double along)
    {
        var len = _cumulative[s + 1] - _cumulative[s];
        var t = len > 0 ? Math.Clamp((along - _cumulative[s]) / len, 0, 1) : 0;
        return a + (t * (b - a));
    }

    private static double Sq(double v) => v * v;
}
