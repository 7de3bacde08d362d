using NetTopologySuite.Geometries;

namespace Fleet.Tracking.Schedule;

/// <summary>
/// An <see cref="ITripPath"/> over a WGS84 polyline: an NTS <see cref="LineString"/> in local metres
/// (equirectangular about the first point) with cumulative lengths, projecting positions onto a window of it.
/// </summary>
/// <remarks>
/// Used for schedules built in memory (tests, benchmarks); GTFS schedules come with their own paths through
/// <c>GtfsTripCatalog</c>. Immutable and thread-safe: projection allocates nothing.
/// </remarks>
public sealed class PolylinePath : ITripPath
{
    private const double EarthRadius = 6_371_008.8;
    private const double DegToRad = Math.PI / 180.0;
    private readonly double _originLat;
    private readonly double _originLon;
    private readonly double _cosLat;
    private readonly Coordinate[] _points;
    private readonly double[] _cumulative;

    /// <summary>Creates a path through WGS84 points (at least one).</summary>
    public PolylinePath(IReadOnlyList<(double Latitude, double Longitude)> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        ArgumentOutOfRangeException.ThrowIfZero(points.Count);
        _originLat = points[0].Latitude;
        _originLon = points[0].Longitude;
        _cosLat = Math.Cos(_originLat * DegToRad);
        _points = new Coordinate[points.Count];
        _cumulative = new double[points.Count];
        for (var i = 0; i < points.Count; i++)
        {
            var (x, y) = ToLocal(points[i].Latitude, points[i].Longitude);
            _points[i] = new Coordinate(x, y);
            if (i > 0)
            {
                _cumulative[i] = _cumulative[i - 1] + _points[i].Distance(_points[i - 1]);
            }
        }

        Line = new LineString(_points.Length > 1 ? _points : [_points[0], _points[0].Copy()]);
    }

    /// <summary>The path as an NTS line in local metres.</summary>
    public LineString Line { get; }

    /// <inheritdoc />
    public double LengthMetres => _cumulative[^1];

    /// <summary>Distance along the path of each vertex.</summary>
    public ReadOnlySpan<double> Cumulative => _cumulative;

    /// <inheritdoc />
    public PathMatch Project(double latitude, double longitude, double fromMetres, double toMetres)
    {
        var (px, py) = ToLocal(latitude, longitude);
        if (_points.Length == 1)
        {
            return new PathMatch(0, Math.Sqrt(Sq(px - _points[0].X) + Sq(py - _points[0].Y)));
        }

        var first = SegmentAt(fromMetres);
        var bestD2 = double.PositiveInfinity;
        var bestAlong = 0.0;
        for (var s = first; s < _points.Length - 1 && _cumulative[s] <= toMetres; s++)
        {
            var a = _points[s];
            var b = _points[s + 1];
            var dx = b.X - a.X;
            var dy = b.Y - a.Y;
            var len2 = (dx * dx) + (dy * dy);
            var t = len2 > 0 ? Math.Clamp((((px - a.X) * dx) + ((py - a.Y) * dy)) / len2, 0, 1) : 0;
            var along = _cumulative[s] + (t * (_cumulative[s + 1] - _cumulative[s]));
            if (along < fromMetres || along > toMetres)
            {
                // Clamp into the window and measure from the clamped point.
                along = Math.Clamp(along, fromMetres, toMetres);
                var segLen = _cumulative[s + 1] - _cumulative[s];
                t = segLen > 0 ? Math.Clamp((along - _cumulative[s]) / segLen, 0, 1) : 0;
            }

            var d2 = Sq(px - (a.X + (t * dx))) + Sq(py - (a.Y + (t * dy)));
            if (d2 < bestD2)
            {
                bestD2 = d2;
                bestAlong = along;
            }
        }

        return new PathMatch(bestAlong, Math.Sqrt(bestD2));
    }

    /// <summary>The WGS84 point at a distance along the path (clamped).</summary>
    public (double Latitude, double Longitude) PointAt(double alongMetres)
    {
        if (_points.Length == 1)
        {
            return ToWgs84(_points[0].X, _points[0].Y);
        }

        var s = SegmentAt(alongMetres);
        var len = _cumulative[s + 1] - _cumulative[s];
        var t = len > 0 ? Math.Clamp((alongMetres - _cumulative[s]) / len, 0, 1) : 0;
        return ToWgs84(_points[s].X + (t * (_points[s + 1].X - _points[s].X)), _points[s].Y + (t * (_points[s + 1].Y - _points[s].Y)));
    }

    /// <summary>Projects WGS84 to this path's local metres.</summary>
    public (double X, double Y) ToLocal(double latitude, double longitude) =>
        ((longitude - _originLon) * DegToRad * EarthRadius * _cosLat, (latitude - _originLat) * DegToRad * EarthRadius);

    /// <summary>Inverse of <see cref="ToLocal"/>.</summary>
    public (double Latitude, double Longitude) ToWgs84(double x, double y) =>
        (_originLat + (y / EarthRadius / DegToRad), _originLon + (x / (EarthRadius * _cosLat) / DegToRad));

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

        return Math.Clamp(i, 0, _points.Length - 2);
    }

    private static double Sq(double v) => v * v;
}
