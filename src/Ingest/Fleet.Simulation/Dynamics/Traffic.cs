using Fleet.Simulation.City;

namespace Fleet.Simulation.Dynamics;

/// <summary>An incident: one street segment slowed for a while.</summary>
/// <param name="Edge">The directed edge.</param>
/// <param name="StartSeconds">Start, seconds after local midnight.</param>
/// <param name="EndSeconds">End, seconds after local midnight.</param>
/// <param name="SpeedFactor">Speed multiplier while it lasts (0.25 to 0.5).</param>
public readonly record struct Incident(int Edge, double StartSeconds, double EndSeconds, double SpeedFactor);

/// <summary>
/// The day's traffic: time-of-day slowdown (two peaks), a congestion level per directed edge that drifts minute by
/// minute (so buses a few minutes apart see nearly the same street), and incidents.
/// </summary>
/// <remarks>
/// Congestion is an AR(1) process per edge driven by hashed noise (seed, edge, minute), advanced lazily; the value
/// at a minute does not depend on who asked first, so the simulation stays deterministic. Not thread-safe.
/// </remarks>
public sealed class Traffic
{
    private const double Persistence = 0.92;
    private const double NoisePerMinute = 0.045;
    private readonly StreetNetwork _network;
    private readonly ulong _seed;
    private readonly double _dayIntensity;
    private readonly double[] _mean;
    private readonly double[] _level;
    private readonly int[] _minute;
    private readonly Dictionary<int, List<Incident>> _incidents = [];

    /// <summary>Creates the day's traffic for a city and a seed.</summary>
    public Traffic(CityModel city, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(city);
        _network = city.Network;
        _seed = seed;
        var rng = SimRandom.Create(seed, 101);
        _dayIntensity = Math.Clamp(1 + (0.15 * rng.NextNormal()), 0.7, 1.35);
        var edges = _network.EdgeLength.Length;
        _mean = new double[edges];
        _level = new double[edges];
        _minute = new int[edges];
        Array.Fill(_minute, int.MinValue);
        for (var e = 0; e < edges; e++)
        {
            _mean[e] = (0.04 + (0.14 * SimRandom.Hash01(seed, 102, (ulong)e))) * _network.Centrality[e];
        }

        // Incidents: about one per two routes per three hours, on streets buses use.
        var used = city.Routes.SelectMany(r => r.Patterns).SelectMany(p => p.Edges).Distinct().Order().ToArray();
        var count = Math.Max(1, (int)Math.Round(city.Options.Hours * city.Routes.Count / 6.0));
        var list = new List<Incident>();
        for (var k = 0; k < count; k++)
        {
            var edge = used[rng.NextInt(0, used.Length)];
            var start = rng.Uniform(city.WindowStartSeconds, city.WindowEndSeconds - 1200);
            var incident = new Incident(edge, start, start + rng.Uniform(1200, 2400), rng.Uniform(0.25, 0.5));
            list.Add(incident);
            if (!_incidents.TryGetValue(edge, out var onEdge))
            {
                _incidents[edge] = onEdge = [];
            }

            onEdge.Add(incident);
        }

        Incidents = list;
    }

    /// <summary>The day's incidents.</summary>
    public IReadOnlyList<Incident> Incidents { get; }

    /// <summary>Overall intensity of the day's peaks (about 0.7 to 1.35).</summary>
    public double DayIntensity => _dayIntensity;

    /// <summary>The congestion level of an edge at a time (0 to 0.6).</summary>
    public double Congestion(int edge, double localSeconds)
    {
        var minute = (int)Math.Floor(localSeconds / 60);
        if (_minute[edge] == int.MinValue)
        {
            _minute[edge] = minute - 30;
            _level[edge] = _mean[edge];
        }

        // Advance lazily; a query for an earlier minute (rare: a later vehicle behind) reuses the current value.
        while (_minute[edge] < minute)
        {
            var m = ++_minute[edge];
            var u1 = 1 - SimRandom.Hash01(_seed, 103, (ulong)edge, (ulong)(uint)m);
            var u2 = SimRandom.Hash01(_seed, 104, (ulong)edge, (ulong)(uint)m);
            var normal = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
            _level[edge] = Math.Clamp(_mean[edge] + (Persistence * (_level[edge] - _mean[edge])) + (NoisePerMinute * normal), 0, 0.6);
        }

        return _level[edge];
    }

    /// <summary>Bus cruising speed in m/s on an edge at a time.</summary>
    public double Speed(int edge, double localSeconds)
    {
        var slow = TimeOfDay.Slowdown(_network.Inbound[edge], _network.Centrality[edge], localSeconds) * _dayIntensity;
        var speed = _network.FreeSpeed[edge] * (1 - Math.Min(slow, 0.75)) * (1 - Congestion(edge, localSeconds));
        if (_incidents.TryGetValue(edge, out var list))
        {
            foreach (var i in list)
            {
                if (localSeconds >= i.StartSeconds && localSeconds < i.EndSeconds)
                {
                    speed *= i.SpeedFactor;
                }
            }
        }

        return Math.Max(1.2, speed);
    }

    /// <summary>True when the traffic light at a node shows red for a vehicle arriving along an edge direction.</summary>
    public bool IsRed(int node, int edgeDirection, double localSeconds)
    {
        if (!_network.Signalized[node])
        {
            return false;
        }

        // A 90 s cycle; east-west and north-south streets get opposite halves.
        var phase = (localSeconds + _network.SignalOffset[node] + ((edgeDirection & 1) == 0 ? 0 : 45)) % 90;
        return phase < 38;
    }
}
