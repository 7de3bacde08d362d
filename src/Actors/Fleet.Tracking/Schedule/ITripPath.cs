namespace Fleet.Tracking.Schedule;

/// <summary>The result of matching a position to a path.</summary>
/// <param name="AlongMetres">Distance along the path of the nearest point.</param>
/// <param name="OffMetres">Distance from the position to the path.</param>
public readonly record struct PathMatch(double AlongMetres, double OffMetres);

/// <summary>The geometry a trip follows, able to project a WGS84 position onto a window of itself.</summary>
/// <remarks>Implementations are immutable and thread-safe.</remarks>
public interface ITripPath
{
    /// <summary>Total length in metres.</summary>
    public double LengthMetres { get; }

    /// <summary>
    /// Projects a WGS84 position onto the part of the path between <paramref name="fromMetres"/> and
    /// <paramref name="toMetres"/> (a window around the last known progress keeps loops unambiguous).
    /// </summary>
    public PathMatch Project(double latitude, double longitude, double fromMetres, double toMetres);
}
