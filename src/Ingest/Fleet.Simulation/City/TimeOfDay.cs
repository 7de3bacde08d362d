namespace Fleet.Simulation.City;

/// <summary>
/// The city's daily rhythm: traffic slowdown with a morning and an evening peak, passenger demand, and the
/// headway multiplier of the timetable. Shared by the timetable planner and the dynamics so that the schedule
/// anticipates the average day and the day's dynamics deviate from it.
/// </summary>
public static class TimeOfDay
{
    /// <summary>
    /// Expected fractional speed loss on an edge at a local time of day (seconds after midnight): the morning peak
    /// hits inbound edges, the evening peak outbound ones, central edges more than outer ones.
    /// </summary>
    public static double Slowdown(double inbound, double centrality, double localSeconds)
    {
        var h = localSeconds / 3600.0;
        var morning = 0.40 * (0.55 + (0.45 * inbound)) * Bump(h, 7.9, 0.9);
        var evening = 0.34 * (0.55 - (0.45 * inbound)) * Bump(h, 16.6, 1.1);
        var midday = 0.08 * Bump(h, 12.5, 2.0);
        return Math.Clamp(centrality * (morning + evening + midday), 0, 0.65);
    }

    /// <summary>Passenger demand multiplier (about 0.4 at night to 1.9 at the peaks).</summary>
    public static double Demand(double localSeconds)
    {
        var h = localSeconds / 3600.0;
        return 0.45 + (1.45 * Bump(h, 7.8, 1.0)) + (1.2 * Bump(h, 16.5, 1.3)) + (0.45 * Bump(h, 12.5, 2.5));
    }

    /// <summary>
    /// Timetable headway multiplier: 1 in the peaks (peak headways from 05:30, so that the whole morning fleet is out by about 06:15, to 09:00, and from 15:00 to
    /// 18:00), 1.5 midday, 2 early and late.
    /// </summary>
    public static double HeadwayFactor(double localSeconds)
    {
        var h = localSeconds / 3600.0;
        return h switch
        {
            < 5.5 => 2.0,
            < 9.0 => 1.0,
            < 15.0 => 1.5,
            < 18.0 => 1.0,
            _ => 2.0,
        };
    }

    private static double Bump(double x, double centre, double width)
    {
        var z = (x - centre) / width;
        return Math.Exp(-0.5 * z * z);
    }
}
