namespace Fleet.Tracking.Output;

/// <summary>
/// The total order the replay writes derived events in: event time, then type, vehicle, trip, stop sequence,
/// stop, alert kind, other party and predicted time (ordinal string comparison throughout).
/// </summary>
/// <remarks>
/// Two different events never compare equal unless every written field is equal, so sorting a batch with this
/// comparer gives the same bytes whatever order the shards produced it in. Stateless; thread-safe.
/// </remarks>
public sealed class DerivedEventOrder : IComparer<DerivedEvent>
{
    /// <summary>The single instance.</summary>
    public static DerivedEventOrder Instance { get; } = new();

    /// <inheritdoc />
    public int Compare(DerivedEvent? x, DerivedEvent? y)
    {
        if (ReferenceEquals(x, y))
        {
            return 0;
        }

        if (x is null)
        {
            return -1;
        }

        if (y is null)
        {
            return 1;
        }

        var c = x.Time.CompareTo(y.Time);
        if (c != 0)
        {
            return c;
        }

        c = x.Type.CompareTo(y.Type);
        if (c != 0)
        {
            return c;
        }

        c = string.CompareOrdinal(x.VehicleId, y.VehicleId);
        if (c != 0)
        {
            return c;
        }

        c = string.CompareOrdinal(x.TripId, y.TripId);
        if (c != 0)
        {
            return c;
        }

        c = x.StopSequence.CompareTo(y.StopSequence);
        if (c != 0)
        {
            return c;
        }

        c = string.CompareOrdinal(x.StopId, y.StopId);
        if (c != 0)
        {
            return c;
        }

        c = x.Kind.CompareTo(y.Kind);
        if (c != 0)
        {
            return c;
        }

        c = x.Cleared.CompareTo(y.Cleared);
        if (c != 0)
        {
            return c;
        }

        c = string.CompareOrdinal(x.Other, y.Other);
        if (c != 0)
        {
            return c;
        }

        c = Nullable.Compare(x.Predicted, y.Predicted);
        if (c != 0)
        {
            return c;
        }

        c = Nullable.Compare(x.DelaySeconds, y.DelaySeconds);
        return c != 0 ? c : Nullable.Compare(x.Value, y.Value);
    }
}
