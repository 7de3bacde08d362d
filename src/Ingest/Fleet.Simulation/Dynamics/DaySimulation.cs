using Fleet.Simulation.City;
using Fleet.Simulation.Output;

namespace Fleet.Simulation.Dynamics;

/// <summary>What a vehicle looks like to the agency's GTFS-RT feed at one instant.</summary>
/// <param name="VehicleLabel">The vehicle as <c>operator/vehicle</c>.</param>
/// <param name="Trip">The trip it is signed into.</param>
/// <param name="Latitude">Reported latitude.</param>
/// <param name="Longitude">Reported longitude.</param>
/// <param name="Bearing">Heading in degrees.</param>
/// <param name="Speed">Speed in m/s.</param>
/// <param name="StopIndex">Index in the trip's stops of the stop it is at or heading to.</param>
/// <param name="AtStop">True when stopped at <paramref name="StopIndex"/>.</param>
/// <param name="DelaySeconds">Current delay, positive when late.</param>
/// <param name="ReportedMs">Time of the position, milliseconds after service-day start.</param>
public readonly record struct VehicleSnapshot(string VehicleLabel, Trip Trip, double Latitude, double Longitude, double Bearing,
    double Speed, int StopIndex, bool AtStop, int DelaySeconds, long ReportedMs);

/// <summary>Receives the agency feed's view of the fleet every few seconds (the GTFS-RT writer).</summary>
public interface ISnapshotSink
{
    /// <summary>Called at each snapshot instant with every vehicle currently signed into a trip.</summary>
    public void Snapshot(long nowMs, IReadOnlyList<VehicleSnapshot> vehicles, OrderedRecording recording);
}

/// <summary>Figures of one simulated day.</summary>
/// <param name="HfpMessages">HFP lines written (valid ones).</param>
/// <param name="MalformedLines">Deliberately malformed lines written.</param>
/// <param name="BufferedMessages">Messages delivered late in bursts.</param>
/// <param name="Detours">Trips that drove a detour.</param>
/// <param name="LateStarts">Vehicles that left late on the first trip they began inside the window.</param>
/// <param name="Incidents">Incidents.</param>
public readonly record struct DayFigures(long HfpMessages, int MalformedLines, long BufferedMessages, int Detours, int LateStarts, int Incidents);

/// <summary>
/// Simulates one day of a <see cref="CityModel"/> at 1 Hz: every block's vehicle drives its trips through the day's
/// <see cref="Traffic"/>, serves passengers, and reports HFP messages into an <see cref="OrderedRecording"/>; actual
/// arrival and departure times are kept as the truth.
/// </summary>
/// <remarks>
/// Vehicles step in lockstep, one second at a time, in block order, so interactions (passengers left for the next
/// bus, shared congestion) are deterministic. Not thread-safe; run once.
/// </remarks>
public sealed class DaySimulation
{
    /// <summary>The malformed-line kinds, in the order they are inserted into the recording.</summary>
    public static readonly IReadOnlyList<string> MalformedKinds =
        ["truncated-payload", "topic-too-short", "bad-receive-time", "payload-not-json", "missing-payload"];

    private readonly CityModel _city;
    private readonly ulong _seed;
    private readonly OrderedRecording _recording;
    private readonly ISnapshotSink? _snapshots;
    private readonly Traffic _traffic;
    private readonly VehicleSim[] _vehicles;
    private readonly Dictionary<Pattern, TripPath> _patternPaths = [];
    private readonly Dictionary<Pattern, double[]> _attractionSuffix = [];
    private readonly long _recordFromTicks;
    private readonly long _recordUntilTicks;

    /// <summary>Prepares the day: traffic, vehicles, detours, late starts.</summary>
    public DaySimulation(CityModel city, ulong seed, OrderedRecording recording, ISnapshotSink? snapshots = null)
    {
        ArgumentNullException.ThrowIfNull(city);
        ArgumentNullException.ThrowIfNull(recording);
        _city = city;
        _seed = seed;
        _recording = recording;
        _snapshots = snapshots;
        _traffic = new Traffic(city, seed);
        StopIdUtf8 = city.Stops.Select(s => System.Text.Encoding.ASCII.GetBytes(s.Id)).ToArray();
        TruthArrivalMs = city.Trips.Select(t => Filled(t.Arrival.Length)).ToArray();
        TruthDepartureMs = city.Trips.Select(t => Filled(t.Arrival.Length)).ToArray();
        TripVehicle = new string[city.Trips.Count];
        foreach (var route in city.Routes)
        {
            foreach (var p in route.Patterns)
            {
                _patternPaths[p] = TripPath.ForPattern(city.Network, p);
                var suffix = new double[p.Stops.Length + 1];
                for (var k = p.Stops.Length - 1; k >= 0; k--)
                {
                    suffix[k] = suffix[k + 1] + city.Stops[p.Stops[k]].Attraction;
                }

                _attractionSuffix[p] = suffix;
            }
        }

        // Which bus runs which block is the day's choice: shuffle each operator's numbers.
        var assign = SimRandom.Create(seed, 300);
        var numbers = new Dictionary<int, List<int>>();
        foreach (var op in city.Blocks.Select(b => b.Route.Operator).Distinct().Order())
        {
            var count = city.Blocks.Count(b => b.Route.Operator == op);
            var first = op switch { 12 => 1001, 18 => 401, _ => 101 };
            var list = Enumerable.Range(first, count).ToList();
            for (var k = list.Count - 1; k > 0; k--)
            {
                var m = assign.NextInt(0, k + 1);
                (list[k], list[m]) = (list[m], list[k]);
            }

            numbers[op] = list;
        }

        var used = new Dictionary<int, int>();
        _vehicles = new VehicleSim[city.Blocks.Count];
        for (var b = 0; b < city.Blocks.Count; b++)
        {
            var block = city.Blocks[b];
            var op = block.Route.Operator;
            used.TryGetValue(op, out var n);
            used[op] = n + 1;
            _vehicles[b] = new VehicleSim(this, block, op, numbers[op][n], SimRandom.Create(seed, 301, (ulong)b));
        }

        // Pattern-level "last bus left at" per stop, so waiting passengers accumulate with the real headway.
        var firstStart = city.Trips.GroupBy(t => t.Pattern).ToDictionary(g => g.Key, g => g.Min(t => t.StartSeconds));
        LastDepartureByPattern = city.Routes.SelectMany(r => r.Patterns).ToDictionary(
            p => p,
            p => Enumerable.Repeat((long)(firstStart.GetValueOrDefault(p, city.WindowStartSeconds) - p.Route.PeakHeadwaySeconds) * 1000, p.Stops.Length).ToArray());
        _recordFromTicks = TicksOf((long)city.WindowStartSeconds * 1000);
        _recordUntilTicks = TicksOf((long)city.WindowEndSeconds * 1000);
    }

    /// <summary>Actual arrival per trip and stop, milliseconds after service-day start; -1 until known.</summary>
    public long[][] TruthArrivalMs { get; }

    /// <summary>Actual departure per trip and stop, milliseconds after service-day start; -1 until known.</summary>
    public long[][] TruthDepartureMs { get; }

    /// <summary>The vehicle (<c>operator/vehicle</c>) that ran each trip.</summary>
    public string[] TripVehicle { get; }

    /// <summary>The day's traffic (incidents are listed here).</summary>
    public Traffic Traffic => _traffic;

    internal CityModel City => _city;

    /// <summary>Stop ids as UTF-8, by stop index (each stop's array is unique, so reference equality compares ids).</summary>
    internal byte[][] StopIdUtf8 { get; }

    internal OrderedRecording Recording => _recording;

    internal Dictionary<Pattern, long[]> LastDepartureByPattern { get; }

    internal long BufferedMessages { get; set; }

    /// <summary>
    /// True when a message received at <paramref name="receiveTicks"/> goes into the recording: the window's first
    /// second up to (not including) its end. Vehicles drive the whole timetable, before and after.
    /// </summary>
    internal bool Records(long receiveTicks) => receiveTicks >= _recordFromTicks && receiveTicks < _recordUntilTicks;

    internal long HfpMessages { get; set; }

    internal TripPath PathFor(Trip trip, SimRandom rng, out bool detour)
    {
        detour = false;
        var basePath = _patternPaths[trip.Pattern];

        // Detours only on trips that run inside the recorded window (with ten minutes to spare for a late finish),
        // so that every detour of the day's figures is in the recording.
        var recorded = trip.StartSeconds >= _city.WindowStartSeconds && trip.Arrival[^1] <= _city.WindowEndSeconds - 600;
        if (recorded && SimRandom.Hash01(_seed, 310, (ulong)trip.Index) < 0.03)
        {
            var d = TripPath.WithDetour(_city.Network, trip.Pattern, rng);
            if (d is not null)
            {
                detour = true;
                return d;
            }
        }

        return basePath;
    }

    internal double[] AttractionSuffix(Pattern pattern) => _attractionSuffix[pattern];

    /// <summary>Runs the whole day; returns its figures. Throws if a vehicle never finishes (a bug).</summary>
    public DayFigures Run()
    {
        var first = _vehicles.Min(v => v.AppearMs) / 1000;
        var malformedAt = new long[MalformedKinds.Count];
        for (var k = 0; k < malformedAt.Length; k++)
        {
            malformedAt[k] = _city.WindowStartSeconds + ((_city.WindowEndSeconds - _city.WindowStartSeconds) * (k + 1) / (malformedAt.Length + 1));
        }

        var snapshot = new List<VehicleSnapshot>(_vehicles.Length);
        var interval = _city.Options.GtfsRtIntervalSeconds;
        var limit = _city.WindowEndSeconds + (4 * 3600);
        var malformedNext = 0;
        for (var s = first; ; s++)
        {
            var active = 0;
            foreach (var v in _vehicles)
            {
                if (!v.Finished)
                {
                    v.Step((s * 1000) + v.PhaseMs);
                    active++;
                }
            }

            if (malformedNext < malformedAt.Length && s >= malformedAt[malformedNext])
            {
                AddMalformed(malformedNext, s);
                malformedNext++;
            }

            // A snapshot is received two seconds after it is taken: only those received inside the window.
            if (_snapshots is not null && s >= _city.WindowStartSeconds && s + 3 <= _city.WindowEndSeconds && s % interval == 0)
            {
                snapshot.Clear();
                foreach (var v in _vehicles)
                {
                    if (v.TrySnapshot(out var snap))
                    {
                        snapshot.Add(snap);
                    }
                }

                _snapshots.Snapshot(s * 1000, snapshot, _recording);
            }

            _recording.FlushBefore(TicksOf(s * 1000));
            if (active == 0)
            {
                break;
            }

            if (s > limit)
            {
                throw new InvalidOperationException($"simulation did not finish by {TimeSpan.FromSeconds(limit)}: {active} vehicles still running");
            }
        }

        _recording.FlushAll();
        return new DayFigures(HfpMessages, malformedNext, BufferedMessages, _vehicles.Sum(v => v.Detours),
            _vehicles.Count(v => v.LateStart), _traffic.Incidents.Count);
    }

    /// <summary>UTC ticks of a service-day millisecond.</summary>
    internal long TicksOf(long ms) => _city.ServiceDayStartUtc.Ticks + (ms * TimeSpan.TicksPerMillisecond);

    private void AddMalformed(int kind, long second)
    {
        // Built from a real message of a running vehicle, then broken in one specific way.
        var source = _vehicles.FirstOrDefault(v => v.LastLine.Length > 0);
        var line = new Utf8Line(1024);
        if (source is null)
        {
            line.Append("/hfp/v2/journey/ongoing/vp/bus {\"VP\":{}}");
        }
        else
        {
            line.Append(source.LastLine.Written);
        }

        var text = System.Text.Encoding.UTF8.GetString(line.Written);
        var split = text.IndexOf(" {", StringComparison.Ordinal);
        var topic = split < 0 ? text : text[..split];
        var payload = split < 0 ? "{}" : text[(split + 1)..];
        var receive = TicksOf((second * 1000) + 500);
        var broken = MalformedKinds[kind] switch
        {
            "truncated-payload" => topic + " " + payload[..(payload.Length / 2)],
            "topic-too-short" => string.Join('/', topic.Split('/').Take(8)) + " " + payload,
            "payload-not-json" => topic + " " + payload.Replace("\"", string.Empty, StringComparison.Ordinal).Replace(":", "=", StringComparison.Ordinal),
            "missing-payload" => topic,
            _ => topic + " " + payload,
        };
        var full = new Utf8Line(1024);
        if (MalformedKinds[kind] == "bad-receive-time")
        {
            full.Append("2026-13-45T25:61:00.000000Z ").Append(broken).Append((byte)'\n');
            _recording.AddRaw(receive, full.Written, MalformedKinds[kind]);
        }
        else
        {
            full.Append(broken);
            _recording.Add(receive, full.Written, MalformedKinds[kind]);
        }
    }

    private static long[] Filled(int n)
    {
        var a = new long[n];
        Array.Fill(a, -1L);
        return a;
    }
}
