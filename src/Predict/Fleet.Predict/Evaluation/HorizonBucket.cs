namespace Fleet.Predict.Evaluation;

/// <summary>A range of prediction horizons (time from the prediction to the actual arrival), in minutes.</summary>
/// <param name="Name">The bucket's name in reports, e.g. <c>5-10</c>.</param>
/// <param name="FromMinutes">Inclusive lower bound.</param>
/// <param name="ToMinutes">Exclusive upper bound.</param>
public readonly record struct HorizonBucket(string Name, double FromMinutes, double ToMinutes)
{
    /// <summary>The reporting buckets: 0-1, 1-3, 3-5, 5-10, 10-15, 15-30 minutes.</summary>
    public static IReadOnlyList<HorizonBucket> All { get; } =
    [
        new("0-1", 0, 1),
        new("1-3", 1, 3),
        new("3-5", 3, 5),
        new("5-10", 5, 10),
        new("10-15", 10, 15),
        new("15-30", 15, 30),
    ];

    /// <summary>The longest horizon any bucket covers, in seconds.</summary>
    public const double MaxHorizonSeconds = 30 * 60;

    /// <summary>The index in <see cref="All"/> of a horizon in seconds, or -1 when outside every bucket.</summary>
    public static int IndexOf(double horizonSeconds)
    {
        if (!(horizonSeconds >= 0) || horizonSeconds >= MaxHorizonSeconds)
        {
            return -1;
        }

        var minutes = horizonSeconds / 60.0;
        var all = All;
        for (var i = 0; i < all.Count; i++)
        {
            if (minutes < all[i].ToMinutes)
            {
                return i;
            }
        }

        return -1;
    }
}

/// <summary>The Cal-ITP prediction accuracy band.</summary>
/// <remarks>
/// <para>Cal-ITP (California Integrated Travel Project) calls a prediction accurate when
/// <c>-60·ln(t + 1.3) &lt; e &lt; 60·ln(t + 1.5)</c> seconds, t = minutes to arrival. The band is asymmetric on
/// purpose: its wider side is for a vehicle that turns up <em>later</em> than predicted (the rider waits a
/// little), its narrower side for one that turns up <em>earlier</em> (the rider may miss it). So in that
/// formula e = actual − predicted.</para>
/// <para>Fleet reports errors as <b>predicted − actual</b> (positive: the prediction was too late, the vehicle
/// came early). In that convention the band reads <c>-60·ln(t + 1.5) &lt; error &lt; 60·ln(t + 1.3)</c>, which
/// is what <see cref="IsAccurate"/> tests. Applying the published formula literally to predicted − actual would
/// invert the asymmetry and reward predictions that make riders miss the bus.</para>
/// <para>t is the horizon to the <em>actual</em> arrival, so every predictor is scored on the same rows in a bucket.</para>
/// </remarks>
public static class CalItp
{
    /// <summary>True when an error (predicted − actual, seconds) at a horizon (seconds) is inside the band.</summary>
    public static bool IsAccurate(double errorSeconds, double horizonSeconds)
    {
        var t = horizonSeconds / 60.0;
        var lateness = -errorSeconds; // actual − predicted, the quantity the published band is written in
        return -60.0 * Math.Log(t + 1.3) < lateness && lateness < 60.0 * Math.Log(t + 1.5);
    }
}
