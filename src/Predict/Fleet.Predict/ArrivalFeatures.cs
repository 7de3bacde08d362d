namespace Fleet.Predict;

/// <summary>
/// The model's input: one row per (vehicle state, downstream stop). <see cref="Names"/> lists the columns; the
/// model file records them and refuses a model whose columns differ.
/// </summary>
/// <remarks>Stateless; thread-safe.</remarks>
public static class ArrivalFeatures
{
    /// <summary>Version of the feature layout; bump when <see cref="Names"/> or a definition changes.</summary>
    public const int SchemaVersion = 1;

    /// <summary>Column names, in order.</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        "stops_remaining",
        "distance_remaining_m",
        "scheduled_remaining_s",
        "delay_s",
        "delay_trend_s_per_min",
        "time_of_day_h",
        "day_of_week",
        "historical_remaining_s",
        "kalman_remaining_s",
        "recent_remaining_s",
        "recent_coverage",
        "recent_mean_age_s",
        "recent_to_historical",
        "dwell_remaining_hist_s",
        "vehicle_dwell_ratio",
        "recent_dwell_to_historical",
        "headway_s",
        "route",
        "at_stop",
        "elapsed_since_stop_s",
        "first_segment_done",
        "delay_remaining_s",
        "first_segment_recent_to_historical",
    ];

    /// <summary>Number of columns.</summary>
    public static int Count => Names.Count;

    /// <summary>Fills the row of downstream row <paramref name="i"/> of the context's plan.</summary>
    internal static void Fill(PredictionContext ctx, DownstreamPlan p, int i, Span<float> row)
    {
        var scheduledRemaining = p.SchedArrival[i] - p.Now;
        var covered = p.Covered[i];
        row[0] = i + 1;
        row[1] = (float)p.DistanceRemaining[i];
        row[2] = (float)scheduledRemaining;
        row[3] = (float)ctx.DelaySeconds;
        row[4] = (float)ctx.DelayTrendSecondsPerMinute;
        row[5] = (float)(p.SecondsOfDay / 3600.0);
        row[6] = (float)(int)ctx.ServiceDate.DayOfWeek;
        row[7] = (float)p.CumHist[i];
        row[8] = (float)p.CumKalman[i];
        row[9] = (float)p.CumRecent[i];
        row[10] = (float)covered / (i + 1);
        row[11] = covered > 0 ? (float)(p.CumRecentAge[i] / covered) : float.NaN;
        row[12] = covered > 0 && p.CumCoveredHist[i] > 0 ? (float)(p.CumCoveredRecent[i] / p.CumCoveredHist[i]) : float.NaN;
        row[13] = (float)p.CumDwellHist[i];
        row[14] = (float)ctx.DwellRatio;
        row[15] = p.CumRecentDwellHist[i] > 0 ? (float)(p.CumRecentDwell[i] / p.CumRecentDwellHist[i]) : float.NaN;
        row[16] = (float)p.HeadwaySeconds;
        row[17] = ctx.RouteIndex;
        row[18] = ctx.AtStop ? 1f : 0f;
        row[19] = (float)p.ElapsedSinceLastStop;
        row[20] = (float)p.FirstSegmentDone;
        row[21] = (float)(scheduledRemaining + ctx.DelaySeconds);
        row[22] = double.IsNaN(p.RecentSegment[0]) ? float.NaN : (float)(p.RecentSegment[0] / Math.Max(1, p.HistSegment[0]));
    }
}
