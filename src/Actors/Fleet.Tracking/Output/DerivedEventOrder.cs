namespace Fleet.Tracking.Output;

/// <summary>
/// The total order the replay writes derived events in: event time, then type (a prediction round's end right after
/// the predictions), vehicle, trip, stop sequence,
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

    // The type's place among events of the same instant: the declared order, except that a prediction round's end
    // follows the predictions at once, before the trip starts and ends of that instant (a trip that ends at the
    // instant of a round withdraws that round's predictions of it; the other way round they would stand).
    private static int Rank(DerivedEventType type) =>
        type == DerivedEventType.PredictionRound ? ((int)DerivedEventType.Prediction * 2) + 1 : (int)type * 2;

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

        c = Rank(x.Type).CompareTo(Rank(y.Type));
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
