using System.Globalization;
using System.Text;
using Fleet.Simulation.City;
using Fleet.Simulation.Dynamics;
using TransitRealtime;

namespace Fleet.Simulation.Output;

/// <summary>
/// The agency's GTFS-Realtime feeds as a typical agency publishes them: every snapshot, a full TripUpdates feed
/// (the timetable plus the vehicle's current delay carried to every remaining stop) and a full VehiclePositions
/// feed, each written as one recording line <c>&lt;receive time&gt; gtfs-rt/&lt;feed&gt; &lt;base64 protobuf&gt;</c>.
/// </summary>
/// <remarks>
/// The feed is generated one second after the snapshot instant and received one second later. Not thread-safe.
/// </remarks>
public sealed class GtfsRtSnapshotWriter : ISnapshotSink, ICountingSink
{
    /// <summary>Topic of the TripUpdates feed lines.</summary>
    public const string TripUpdatesTopic = "gtfs-rt/trip-updates";

    /// <summary>Topic of the VehiclePositions feed lines.</summary>
    public const string VehiclePositionsTopic = "gtfs-rt/vehicle-positions";

    private readonly CityModel _city;
    private readonly string _startDate;
    private readonly Utf8Line _line = new(1 << 16);
    private readonly ProtoWriter _proto = new();

    /// <summary>Creates the writer for a city.</summary>
    public GtfsRtSnapshotWriter(CityModel city)
    {
        ArgumentNullException.ThrowIfNull(city);
        _city = city;
        _startDate = city.Options.Date.ToString("yyyyMMdd", CultureInfo.InvariantCulture);
    }

    /// <inheritdoc />
    public long Count { get; private set; }

    /// <inheritdoc />
    public void Snapshot(long nowMs, IReadOnlyList<VehicleSnapshot> vehicles, OrderedRecording recording)
    {
        ArgumentNullException.ThrowIfNull(vehicles);
        ArgumentNullException.ThrowIfNull(recording);
        var generatedMs = nowMs + 1000;
        var unix = UnixSeconds(generatedMs / 1000.0);
        var receiveTicks = _city.ServiceDayStartUtc.Ticks + ((generatedMs + 1000) * TimeSpan.TicksPerMillisecond);

        // Encoded by hand, field by field in field-number order (the order of Google.Protobuf's generated code, so the
        // bytes are what FeedMessage.ToByteArray() gives; a test checks it): building the message objects of a
        // 1,000-vehicle snapshot cost the generator's main thread about a third of its time, with the garbage.
        var w = _proto;
        w.Clear();
        Header(w, unix);
        foreach (var v in vehicles)
        {
            var trip = v.Trip;
            var pattern = trip.Pattern;
            var reported = UnixSeconds(v.ReportedMs / 1000.0);

            // A typical agency: the current delay, carried unchanged to every stop still ahead; a bus waiting at
            // its first stop is predicted to leave on time (or now, if that is later).
            var entity = w.BeginMessage(2);
            w.String(1, trip.Id);
            var tripUpdate = w.BeginMessage(3);
            Descriptor(w, 1, trip);
            var stopIndex = Math.Min(v.StopIndex, pattern.Stops.Length - 1);
            for (var k = stopIndex; k < pattern.Stops.Length; k++)
            {
                var delay = k == 0 ? Math.Max(0, v.DelaySeconds) : v.DelaySeconds;
                var update = w.BeginMessage(2);
                w.UInt64(1, (uint)(k + 1));
                Event(w, 2, trip.Arrival[k], delay);
                Event(w, 3, trip.Departure[k], delay);
                w.String(4, _city.Stops[pattern.Stops[k]].Id);
                w.EndMessage(update);
            }

            Vehicle(w, 3, v.VehicleLabel);
            w.UInt64(4, reported);
            w.Int64(5, v.DelaySeconds);
            w.EndMessage(tripUpdate);
            w.EndMessage(entity);
        }

        Write(recording, receiveTicks, TripUpdatesTopic, w.Written);

        w.Clear();
        Header(w, unix);
        foreach (var v in vehicles)
        {
            var trip = v.Trip;
            var pattern = trip.Pattern;
            var reported = UnixSeconds(v.ReportedMs / 1000.0);
            var stopIndex = Math.Min(v.StopIndex, pattern.Stops.Length - 1);
            var entity = w.BeginMessage(2);
            w.String(1, v.VehicleLabel);
            var position = w.BeginMessage(4);
            Descriptor(w, 1, trip);
            var point = w.BeginMessage(2);
            w.Float(1, (float)v.Latitude);
            w.Float(2, (float)v.Longitude);
            w.Float(3, (float)Math.Round(v.Bearing));
            w.Float(5, (float)Math.Round(v.Speed, 1));
            w.EndMessage(point);
            w.UInt64(3, (uint)(stopIndex + 1));
            w.Int64(4, (int)(v.AtStop ? VehiclePosition.Types.VehicleStopStatus.StoppedAt : VehiclePosition.Types.VehicleStopStatus.InTransitTo));
            w.UInt64(5, reported);
            w.String(7, _city.Stops[pattern.Stops[stopIndex]].Id);
            Vehicle(w, 8, v.VehicleLabel);
            w.EndMessage(position);
            w.EndMessage(entity);
        }

        Write(recording, receiveTicks + 1000, VehiclePositionsTopic, w.Written);
    }

    /// <summary>FeedMessage.header (field 1): version 2.0, full dataset, the feed's timestamp.</summary>
    private static void Header(ProtoWriter w, ulong unix)
    {
        var header = w.BeginMessage(1);
        w.String(1, "2.0");
        w.Int64(2, (int)FeedHeader.Types.Incrementality.FullDataset);
        w.UInt64(3, unix);
        w.EndMessage(header);
    }

    /// <summary>A VehicleDescriptor with id and label both the vehicle's <c>operator/vehicle</c>.</summary>
    private static void Vehicle(ProtoWriter w, int field, string label)
    {
        var vehicle = w.BeginMessage(field);
        w.String(1, label);
        w.String(2, label);
        w.EndMessage(vehicle);
    }

    private void Descriptor(ProtoWriter w, int field, Trip trip)
    {
        var start = TimeSpan.FromSeconds(trip.StartSeconds);
        var descriptor = w.BeginMessage(field);
        w.String(1, trip.Id);
        w.String(2, string.Create(CultureInfo.InvariantCulture, $"{(int)start.TotalHours:D2}:{start.Minutes:D2}:{start.Seconds:D2}"));
        w.String(3, _startDate);
        w.Int64(4, (int)TripDescriptor.Types.ScheduleRelationship.Scheduled);
        w.String(5, trip.Pattern.Route.Id);
        w.UInt64(6, (uint)trip.Pattern.Direction);
        w.EndMessage(descriptor);
    }

    /// <summary>A StopTimeEvent: delay (field 1) and the predicted time in POSIX seconds (field 2).</summary>
    private void Event(ProtoWriter w, int field, int scheduledSeconds, int delay)
    {
        var e = w.BeginMessage(field);
        w.Int64(1, delay);
        w.Int64(2, (long)UnixSeconds(scheduledSeconds + delay));
        w.EndMessage(e);
    }

    private ulong UnixSeconds(double serviceSeconds) =>
        (ulong)((_city.ToUtc(serviceSeconds) - DateTime.UnixEpoch).Ticks / TimeSpan.TicksPerSecond);

    private void Write(OrderedRecording recording, long receiveTicks, string topic, ReadOnlySpan<byte> message)
    {
        _line.Clear();
        _line.Append(topic).Append((byte)' ').AppendBase64(message);
        recording.Add(receiveTicks, _line.Written);
        Count++;
    }
}
