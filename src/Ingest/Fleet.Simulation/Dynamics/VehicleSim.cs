using System.Globalization;
using System.Text;
using Fleet.Simulation.City;
using Fleet.Simulation.Output;

namespace Fleet.Simulation.Dynamics;

/// <summary>
/// One bus running one block through the day.
/// </summary>
/// <remarks>
/// <code>
///  NotStarted ──appear──► Terminal ──depart (PDE)──► Driving ◄──PDE── AtStop
///                            ▲                          │  ──stop (ARS)──►
///                            └──── last stop, next trip ┘ ──last stop, no next trip──► Finished
/// </code>
/// Not thread-safe; driven by <see cref="DaySimulation"/> once a second.
/// </remarks>
internal sealed class VehicleSim
{
    private const double StopRadius = 25;
    private const double DueDistance = 150;
    private const double Braking = 1.3;
    private const double Acceleration = 1.1;
    private const int Capacity = 85;
    private static readonly byte[] Eol = "EOL"u8.ToArray();

    private readonly DaySimulation _day;
    private readonly Block _block;
    private readonly SimRandom _rng;
    private readonly Traffic _traffic;
    private readonly CityModel _city;
    private Utf8Line _line = new(1024);
    private Utf8Line _lastLine = new(1024);
    private readonly byte[] _vehicleTopic;
    private readonly int _operator;
    private readonly int _number;
    private readonly double _driverFactor;
    private readonly double _gpsSigma;
    private readonly List<(long Start, long End)> _bursts = [];

    private Phase _phase = Phase.NotStarted;
    private int _tripIndex = -1;
    private Trip _trip = null!;
    private TripPath _path = null!;
    private byte[] _tripTopic = [];
    private byte[] _payloadHead = [];
    private byte[] _payloadMiddle = [];
    private byte[] _payloadTail = [];
    private int _segment;
    private double _pos;
    private double _speed;
    private double _acc;
    private double _heading;
    private int _nextStop;
    private int _pendingDep = -1;
    private bool _dueSent;
    private bool _arrSent;
    private bool _decided;
    private bool _willStop;
    private int _boardings;
    private int _alightings;
    private int _onboard;
    private int _signalChecked;
    private int _holdNode = -1;
    private long _doorsOpenMs;
    private long _doorsCloseMs;
    private long _departMs;
    private bool _doorsOpen;
    private bool _dooSent;
    private bool _docSent;
    private double _gpsErrX;
    private double _gpsErrY;
    private double _lat;
    private double _lon;
    private int _lastGeo = -1;
    private byte[] _lastNextStop = [];
    private long _burstSeq;
    private long _burstEnd;
    private VehicleSnapshot _agencyView;
    private bool _agencyHeard;
    private long _backlogReceiveMs;
    private readonly int _lateTrip;
    private readonly long _lateByMs;

    public VehicleSim(DaySimulation day, Block block, int operatorNumber, int number, SimRandom rng)
    {
        _day = day;
        _block = block;
        _rng = rng;
        _city = day.City;
        _traffic = day.Traffic;
        _operator = operatorNumber;
        _number = number;
        Label = string.Create(CultureInfo.InvariantCulture, $"{operatorNumber:D4}/{number:D5}");
        _vehicleTopic = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"/bus/{operatorNumber:D4}/{number:D5}/"));
        PhaseMs = rng.NextInt(0, 1000);
        _driverFactor = rng.Uniform(0.92, 1.08);
        _gpsSigma = rng.Uniform(5, 15) / Math.Sqrt(2);
        var firstDeparture = (long)block.Trips[0].StartSeconds * 1000;
        // A late start: the first trip the vehicle begins inside the window (early enough for the delay to be seen)
        // leaves its terminal 1 to 8 minutes late
        // (a bus that pulls out late, or a driver change that runs late).
        var late = rng.Chance(0.08);
        var lateBy = (long)rng.Uniform(60_000, 480_000);
        var early = (long)rng.Uniform(120_000, 360_000);
        _lateTrip = late
            ? block.Trips.FindIndex(t => t.StartSeconds >= day.City.WindowStartSeconds && t.StartSeconds + 480 < day.City.WindowEndSeconds)
            : -1;
        _lateByMs = lateBy;
        LateStart = _lateTrip >= 0;
        AppearMs = Align(_lateTrip == 0 ? firstDeparture + lateBy : firstDeparture - early);
        if (block.OutBeforeWindow)
        {
            // Back from a trip that ended before the window: on its layover at the terminal when the window opens
            // (a late start is then a late departure from there).
            AppearMs = Math.Min(AppearMs, Align((day.City.WindowStartSeconds * 1000L) - 60_000));
        }


        // Tunnels and radio shadows: now and then a vehicle's messages arrive late, all at once.
        var end = (long)block.Trips[^1].Arrival[^1] * 1000;
        for (var hourStart = firstDeparture; hourStart < end; hourStart += 3_600_000)
        {
            if (rng.Chance(0.25))
            {
                var start = hourStart + (long)rng.Uniform(0, 3_300_000);
                _bursts.Add((start, start + (long)rng.Uniform(20_000, 90_000)));
            }
        }
    }

    private enum Phase
    {
        NotStarted,
        Terminal,
        Driving,
        AtStop,
        Finished,
    }

    public string Label { get; }

    public int PhaseMs { get; }

    public long AppearMs { get; }

    public bool LateStart { get; }

    public int Detours { get; private set; }

    public bool Finished => _phase == Phase.Finished;

    /// <summary>The last VP topic and payload this vehicle reported (for building malformed samples).</summary>
    public Utf8Line LastLine => _lastLine;

    public bool TrySnapshot(out VehicleSnapshot snapshot)
    {
        if (_phase is Phase.NotStarted or Phase.Finished)
        {
            snapshot = default;
            return false;
        }

        // What the agency last heard from the bus: in a tunnel, the position from before it.
        snapshot = _agencyView;
        return _agencyHeard;
    }

    public void Step(long nowMs)
    {
        switch (_phase)
        {
            case Phase.NotStarted:
                if (nowMs >= AppearMs)
                {
                    StartTrip(0, nowMs, nowMs + 30_000);
                    StepTerminal(nowMs);
                }

                return;
            case Phase.Terminal:
                StepTerminal(nowMs);
                return;
            case Phase.AtStop:
                StepAtStop(nowMs);
                return;
            case Phase.Driving:
                StepDriving(nowMs);
                return;
            default:
                return;
        }
    }

    private void StartTrip(int index, long nowMs, long earliestDeparture)
    {
        _tripIndex = index;
        _trip = _block.Trips[index];
        _path = _day.PathFor(_trip, _rng, out var detour);
        if (detour)
        {
            Detours++;
        }

        _day.TripVehicle[_trip.Index] = Label;
        var p = _trip.Pattern;
        var start = TimeSpan.FromSeconds(_trip.StartSeconds);
        var startText = string.Create(CultureInfo.InvariantCulture, $"{(int)start.TotalHours:D2}:{start.Minutes:D2}");
        _tripTopic = Encoding.UTF8.GetBytes($"{p.Route.Id}/{p.Direction + 1}/{p.Headsign}/{startText}/");
        _payloadHead = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"\"desi\":\"{p.Route.ShortName}\",\"dir\":\"{p.Direction + 1}\",\"oper\":{_operator},\"veh\":{_number},\"tst\":\""));
        _payloadMiddle = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $",\"oday\":\"{_city.Options.Date:yyyy-MM-dd}\",\"jrn\":{_trip.JourneyNumber},\"line\":{p.Route.Line},\"start\":\"{startText}\",\"loc\":\"GPS\",\"stop\":"));
        _payloadTail = Encoding.UTF8.GetBytes($",\"route\":\"{p.Route.Id}\",\"occu\":");
        _segment = 0;
        _pos = _path.StopDistance[0];
        _segment = _path.SegmentAt(_pos, 0);
        _speed = 0;
        _acc = 0;
        _nextStop = 0;
        _pendingDep = -1;
        _signalChecked = 0;
        _holdNode = -1;
        _phase = Phase.Terminal;

        // Terminal: doors open for boarding a while before departure; never leave before the timetable.
        var scheduled = (long)_trip.Departure[0] * 1000;
        if (index == _lateTrip)
        {
            earliestDeparture = Math.Max(earliestDeparture, scheduled + _lateByMs);
        }

        _departMs = Math.Max(scheduled, earliestDeparture) + (long)_rng.Uniform(0, 12_000);
        _departMs = Align(_departMs);
        _doorsOpenMs = Math.Max(nowMs + 3000, _departMs - 120_000);
        _doorsCloseMs = _departMs - 3000;
        _dooSent = false;
        _docSent = false;
        _doorsOpen = false;
        _dueSent = true;
        _arrSent = true;
        _decided = true;
        _willStop = true;
        UpdateGps(nowMs, resetHeading: true);
    }

    private void StepTerminal(long nowMs)
    {
        UpdateGps(nowMs, resetHeading: false);
        if (!_dooSent && nowMs >= _doorsOpenMs && nowMs < _doorsCloseMs)
        {
            _dooSent = true;
            _doorsOpen = true;
            Emit(HfpEvent.Doo, nowMs, 0);
        }

        if (_dooSent && !_docSent && nowMs >= _doorsCloseMs)
        {
            _docSent = true;
            _doorsOpen = false;
            Emit(HfpEvent.Doc, nowMs, 0);
        }

        if (nowMs >= _departMs)
        {
            var boarded = Board(0, nowMs);
            _onboard = Math.Min(Capacity, _onboard + boarded);
            _day.TruthArrivalMs[_trip.Index][0] = nowMs;
            _day.TruthDepartureMs[_trip.Index][0] = nowMs;
            _day.LastDepartureByPattern[_trip.Pattern][0] = nowMs;
            Emit(HfpEvent.Pde, nowMs, 0);
            _pendingDep = 0;
            _nextStop = 1;
            _dueSent = false;
            _arrSent = false;
            _decided = false;
            _phase = Phase.Driving;
        }

        EmitVp(nowMs);
    }

    private void StepAtStop(long nowMs)
    {
        var k = _nextStop;
        var last = k == _path.StopDistance.Length - 1;
        _speed = 0;
        _acc = 0;
        UpdateGps(nowMs, resetHeading: false);
        if (!_dooSent && nowMs >= _doorsOpenMs)
        {
            _dooSent = true;
            _doorsOpen = true;
            Emit(HfpEvent.Doo, nowMs, k);
        }

        if (_dooSent && !_docSent && nowMs >= _doorsCloseMs)
        {
            _docSent = true;
            _doorsOpen = false;
            Emit(HfpEvent.Doc, nowMs, k);
        }

        if (last && _docSent)
        {
            EmitVp(nowMs);
            if (_tripIndex + 1 < _block.Trips.Count)
            {
                StartTrip(_tripIndex + 1, nowMs, nowMs + (long)_rng.Uniform(60_000, 120_000));
            }
            else
            {
                _phase = Phase.Finished;
            }

            return;
        }

        if (!last && nowMs >= _departMs)
        {
            _onboard = Math.Clamp(_onboard - _alightings + _boardings, 0, Capacity);
            _day.TruthDepartureMs[_trip.Index][k] = nowMs;
            _day.LastDepartureByPattern[_trip.Pattern][k] = nowMs;
            Emit(HfpEvent.Pde, nowMs, k);
            _pendingDep = k;
            _nextStop = k + 1;
            _dueSent = false;
            _arrSent = false;
            _decided = false;
            _phase = Phase.Driving;
        }

        EmitVp(nowMs);
    }

    private void StepDriving(long nowMs)
    {
        var local = nowMs / 1000.0;
        var stops = _path.StopDistance;
        var k = _nextStop;
        var lastStop = stops.Length - 1;
        var toStop = stops[k] - _pos;
        if (!_decided && toStop <= 200)
        {
            Decide(k, nowMs, toStop);
        }

        // Targets: the next stop if we stop there, and a red light ahead.
        var target = double.PositiveInfinity;
        if (_decided && _willStop)
        {
            target = stops[k];
        }

        var lookahead = (_speed * _speed / (2 * Braking)) + _speed + 12;
        while (_signalChecked < _path.Nodes.Length - 1 && _path.Distance[_signalChecked] <= _pos + 0.5)
        {
            _signalChecked++;
        }

        if (_holdNode < 0 && _signalChecked < _path.Nodes.Length - 1 && _path.Distance[_signalChecked] - _pos <= lookahead)
        {
            var node = _path.Nodes[_signalChecked];
            var dir = StreetNetwork.EdgeDirection(_path.Edges[_signalChecked - 1]);
            if (_traffic.IsRed(node, dir, local))
            {
                _holdNode = _signalChecked;
            }
            else
            {
                _signalChecked++;
            }
        }

        if (_holdNode >= 0)
        {
            var dir = StreetNetwork.EdgeDirection(_path.Edges[_holdNode - 1]);
            if (_traffic.IsRed(_path.Nodes[_holdNode], dir, local))
            {
                target = Math.Min(target, _path.Distance[_holdNode] - 6);
            }
            else
            {
                _signalChecked = _holdNode + 1;
                _holdNode = -1;
            }
        }

        var cruise = _traffic.Speed(_path.Edges[_segment], local) * _driverFactor;
        var allowed = double.IsPositiveInfinity(target) ? double.PositiveInfinity : Math.Sqrt(2 * Braking * Math.Max(0, target - _pos));
        var v = Math.Min(Math.Min(_speed + Acceleration, cruise), allowed);
        v = Math.Max(v, Math.Max(0, _speed - 3.5));
        var newPos = _pos + ((_speed + v) / 2);
        var reached = false;
        if (newPos >= target - 0.3)
        {
            newPos = target;
            v = 0;
            reached = true;
        }

        var previousPos = _pos;
        _acc = v - _speed;
        _speed = v;
        _pos = Math.Max(_pos, newPos);
        _segment = _path.SegmentAt(_pos, _segment);
        UpdateGps(nowMs, resetHeading: false);

        // Stop events in the order they happened during this second.
        if (_pendingDep >= 0 && _pos - stops[_pendingDep] >= StopRadius)
        {
            Emit(HfpEvent.Dep, nowMs, _pendingDep);
            _pendingDep = -1;
        }

        if (!_dueSent && stops[k] - _pos <= DueDistance)
        {
            _dueSent = true;
            Emit(HfpEvent.Due, nowMs, k);
        }

        if (_decided && !_willStop && _pos >= stops[k])
        {
            // Passing through: the crossing moment, interpolated inside this second.
            var f = Math.Clamp((stops[k] - previousPos) / Math.Max(1e-6, _pos - previousPos), 0, 1);
            var at = nowMs - 1000 + (long)Math.Round(f * 1000);
            _day.TruthArrivalMs[_trip.Index][k] = at;
            _day.TruthDepartureMs[_trip.Index][k] = at;
            _day.LastDepartureByPattern[_trip.Pattern][k] = at;
            Emit(HfpEvent.Pas, nowMs, k);
            _nextStop = k + 1;
            _dueSent = false;
            _arrSent = false;
            _decided = false;
        }
        else if (_decided && _willStop)
        {
            if (!_arrSent && stops[k] - _pos <= StopRadius)
            {
                _arrSent = true;
                Emit(HfpEvent.Arr, nowMs, k);
            }

            if (reached && target == stops[k])
            {
                Emit(HfpEvent.Ars, nowMs, k);
                _day.TruthArrivalMs[_trip.Index][k] = nowMs;
                BeginDwell(k, nowMs, k == lastStop);
            }
        }

        EmitVp(nowMs);
    }

    private void Decide(int k, long nowMs, double distance)
    {
        _decided = true;
        var last = k == _path.StopDistance.Length - 1;
        _boardings = last ? 0 : Math.Min(Capacity - _onboard, Board(k, nowMs));
        var suffix = _day.AttractionSuffix(_trip.Pattern);
        var p = last ? 1.0 : _city.Stops[_trip.Pattern.Stops[k]].Attraction / suffix[k];
        _alightings = 0;
        for (var n = 0; n < _onboard; n++)
        {
            if (_rng.NextDouble() < p)
            {
                _alightings++;
            }
        }

        // A timing point also stops a bus that is early, to wait for the timetable.
        var eta = nowMs + (long)(1000 * distance / Math.Max(3, _speed));
        var early = _trip.Pattern.Timepoint[k] && eta < ((long)_trip.Departure[k] * 1000) - 20_000;
        _willStop = last || _boardings + _alightings > 0 || early;
    }

    private int Board(int k, long nowMs)
    {
        var stop = _city.Stops[_trip.Pattern.Stops[k]];
        var waited = Math.Clamp((nowMs - _day.LastDepartureByPattern[_trip.Pattern][k]) / 1000.0, 0, 1800);
        var rate = stop.Demand / 60.0 * TimeOfDay.Demand(nowMs / 1000.0);
        return _rng.NextPoisson(rate * waited);
    }

    private void BeginDwell(int k, long nowMs, bool last)
    {
        _phase = Phase.AtStop;
        _dooSent = false;
        _docSent = false;
        var open = _boardings + _alightings > 0 || last;

        // A timing point holds an early bus until two seconds before its scheduled departure.
        var hold = _trip.Pattern.Timepoint[k] && !last ? ((long)_trip.Departure[k] * 1000) - 2000 : 0;
        if (open)
        {
            _doorsOpenMs = nowMs + 1000;
            var service = 3 + Math.Max(2.2 * _boardings, 1.3 * (last ? _onboard : _alightings)) + _rng.Uniform(0, 2.5);
            var close = Math.Max(nowMs + 1000 + (long)(service * 1000), hold);
            _doorsCloseMs = Align(close);
            _departMs = _doorsCloseMs + (1000 * _rng.NextInt(1, 3));
        }
        else
        {
            _doorsOpenMs = long.MaxValue;
            _doorsCloseMs = long.MaxValue;
            _docSent = true;
            _departMs = Align(Math.Max(nowMs + 1000, hold));
        }

        if (last)
        {
            _day.TruthDepartureMs[_trip.Index][k] = nowMs;
            _onboard = 0;
        }
    }

    private long Align(long ms) => (ms / 1000 * 1000) + PhaseMs;

    private void UpdateGps(long nowMs, bool resetHeading)
    {
        var (x, y, heading) = _path.PointAt(_pos, _segment);
        if (resetHeading || _speed > 0.3)
        {
            _heading = heading;
        }

        // GPS error: a slowly wandering offset (AR(1)), 5 to 15 m typical per vehicle.
        const double rho = 0.93;
        var innovation = Math.Sqrt(1 - (rho * rho)) * _gpsSigma;
        _gpsErrX = (rho * _gpsErrX) + (innovation * _rng.NextNormal());
        _gpsErrY = (rho * _gpsErrY) + (innovation * _rng.NextNormal());
        var projection = _city.Network.Projection;
        _lat = projection.Latitude(y + _gpsErrY);
        _lon = projection.Longitude(x + _gpsErrX);
        _ = nowMs;
    }

    private int ScheduleDeviation(long nowMs)
    {
        var stops = _path.StopDistance;
        double scheduledSeconds;
        switch (_phase)
        {
            case Phase.Terminal:
                scheduledSeconds = _trip.Departure[0];
                break;
            case Phase.AtStop:
                var k = _nextStop;
                var now = nowMs / 1000.0;
                scheduledSeconds = now < _trip.Arrival[k] ? _trip.Arrival[k] : Math.Min(now, _trip.Departure[k]);
                break;
            default:
                var n = Math.Clamp(_nextStop, 1, stops.Length - 1);
                var span = stops[n] - stops[n - 1];
                var f = span <= 0 ? 1 : Math.Clamp((_pos - stops[n - 1]) / span, 0, 1);
                scheduledSeconds = _trip.Departure[n - 1] + (f * (_trip.Arrival[n] - _trip.Departure[n - 1]));
                break;
        }

        return (int)Math.Round(scheduledSeconds - (nowMs / 1000.0));
    }

    private void EmitVp(long nowMs) => Emit(HfpEvent.Vp, nowMs, -1);

    /// <summary>Formats one HFP v2 message exactly as HSL does and queues it with its receive time.</summary>
    private void Emit(HfpEvent kind, long nowMs, int stopIndex)
    {
        // Receive time: network latency, or the end of a radio shadow for buffered messages.
        long receiveMs = nowMs + _rng.NextInt(25, 180);
        var buffered = false;
        foreach (var (start, end) in _bursts)
        {
            if (nowMs >= start && nowMs < end)
            {
                if (_burstEnd != end)
                {
                    (_burstEnd, _burstSeq) = (end, 0);
                }

                receiveMs = end + 40 + (3 * _burstSeq++);
                buffered = true;
                break;
            }
        }

        // The modem sends its backlog first: a live message after a tunnel waits for the last buffered one.
        if (buffered)
        {
            _backlogReceiveMs = receiveMs;
        }
        else if (receiveMs <= _backlogReceiveMs)
        {
            // Queued behind the backlog, in the order they were sent.
            receiveMs = _backlogReceiveMs + 3;
            _backlogReceiveMs = receiveMs;
        }

        var receiveTicks = _day.TicksOf(receiveMs) + (_rng.NextInt(0, 1000) * 10);
        var dl = ScheduleDeviation(nowMs);
        if (!buffered)
        {
            _agencyView = new VehicleSnapshot(Label, _trip, _lat, _lon, _heading, _speed, _nextStop,
                _phase is Phase.AtStop or Phase.Terminal, -dl, nowMs);
            _agencyHeard = true;
        }

        if (!_day.Records(receiveTicks))
        {
            // Before the window opens or after it closes: the bus drives on, but the recording is not listening.
            return;
        }

        var line = _line;
        line.Clear();
        var p = _trip.Pattern;
        var atStop = stopIndex >= 0 ? stopIndex : CurrentStopForVp();
        var nextStopText = _phase == Phase.AtStop && _nextStop == _path.StopDistance.Length - 1 && kind == HfpEvent.Vp && _dooSent
            ? Eol
            : _day.StopIdUtf8[p.Stops[Math.Min(_nextStop, p.Stops.Length - 1)]];

        // Geohash digits: integer degrees, then the first three decimals of latitude and longitude interleaved.
        // (from the 6-decimal values the payload reports, so that topic and payload always agree).
        var lat6 = (long)Math.Round(_lat * 1e6, MidpointRounding.AwayFromZero);
        var lon6 = (long)Math.Round(_lon * 1e6, MidpointRounding.AwayFromZero);
        var latScaled = (int)(lat6 / 1000.0);
        var lonScaled = (int)(lon6 / 1000.0);
        var geo = (latScaled * 100_000) + lonScaled;
        int level;
        if (!ReferenceEquals(nextStopText, _lastNextStop) || _lastGeo < 0)
        {
            level = 0;
        }
        else if (latScaled / 1000 != _lastGeo / 100_000 / 1000 || lonScaled / 1000 != _lastGeo % 100_000 / 1000)
        {
            level = 1;
        }
        else if (latScaled / 100 != _lastGeo / 100_000 / 100 || lonScaled / 100 != _lastGeo % 100_000 / 100)
        {
            level = 2;
        }
        else if (latScaled / 10 != _lastGeo / 100_000 / 10 || lonScaled / 10 != _lastGeo % 100_000 / 10)
        {
            level = 3;
        }
        else if (latScaled != _lastGeo / 100_000 || lonScaled != _lastGeo % 100_000)
        {
            level = 4;
        }
        else
        {
            level = 5;
        }

        _lastGeo = geo;
        _lastNextStop = nextStopText;

        line.Append("/hfp/v2/journey/ongoing/"u8).Append(HfpEventNames.Lower[(int)kind]).Append(_vehicleTopic).Append(_tripTopic)
            .Append(nextStopText).Append((byte)'/').AppendInt(level).Append((byte)'/')
            .AppendInt(latScaled / 1000).Append((byte)';').AppendInt(lonScaled / 1000).Append((byte)'/')
            .AppendInt(latScaled / 100 % 10).AppendInt(lonScaled / 100 % 10).Append((byte)'/')
            .AppendInt(latScaled / 10 % 10).AppendInt(lonScaled / 10 % 10).Append((byte)'/')
            .AppendInt(latScaled % 10).AppendInt(lonScaled % 10);

        var tstTicks = _day.TicksOf(nowMs);
        var odo = Math.Max(0, _pos - _path.StopDistance[0]);
        line.Append(" {\""u8).Append(HfpEventNames.Upper[(int)kind]).Append("\":{"u8).Append(_payloadHead)
            .AppendTimestamp(tstTicks, 3).Append("\",\"tsi\":"u8).AppendInt((tstTicks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerSecond)
            .Append(",\"spd\":"u8).AppendFixed(_speed, 2)
            .Append(",\"hdg\":"u8).AppendInt((int)Math.Round(_heading) % 360)
            .Append(",\"lat\":"u8).AppendScaled(lat6, 6)
            .Append(",\"long\":"u8).AppendScaled(lon6, 6)
            .Append(",\"acc\":"u8).AppendFixed(_acc, 2)
            .Append(",\"dl\":"u8).AppendInt(dl)
            .Append(",\"odo\":"u8).AppendInt((long)odo)
            .Append(",\"drst\":"u8).AppendInt(_doorsOpen ? 1 : 0)
            .Append(_payloadMiddle);
        if (atStop >= 0)
        {
            line.AppendInt(_city.Stops[p.Stops[atStop]].Number);
        }
        else
        {
            line.Append("null"u8);
        }

        line.Append(_payloadTail).AppendInt(Math.Min(100, _onboard * 100 / Capacity));
        if (kind != HfpEvent.Vp)
        {
            var baseTicks = _city.ServiceDayStartUtc.Ticks;
            line.Append(",\"ttarr\":\""u8).AppendTimestamp(baseTicks + (_trip.Arrival[stopIndex] * TimeSpan.TicksPerSecond), 3)
                .Append("\",\"ttdep\":\""u8).AppendTimestamp(baseTicks + (_trip.Departure[stopIndex] * TimeSpan.TicksPerSecond), 3)
                .Append((byte)'"');
        }

        line.Append("}}"u8);

        _day.Recording.Add(receiveTicks, line.Written);
        if (buffered)
        {
            _day.BufferedMessages++;
        }

        _day.HfpMessages++;
        if (kind == HfpEvent.Vp)
        {
            // Keep this line as the last VP by swapping buffers rather than copying it.
            (_line, _lastLine) = (_lastLine, _line);
        }
    }

    private int CurrentStopForVp()
    {
        if (_phase is Phase.AtStop or Phase.Terminal)
        {
            return _nextStop;
        }

        var stops = _path.StopDistance;
        if (_nextStop < stops.Length && Math.Abs(stops[_nextStop] - _pos) <= StopRadius)
        {
            return _nextStop;
        }

        return _pendingDep;
    }
}
