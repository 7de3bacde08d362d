using System.Globalization;
using System.Text;
using Fleet.Simulation.City;
using Fleet.Simulation.Dynamics;
using Google.Protobuf;
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
        var unix = (ulong)((_city.ToUtc(generatedMs / 1000.0) - DateTime.UnixEpoch).Ticks / TimeSpan.TicksPerSecond);
        var updates = new FeedMessage { Header = Header(unix) };
        var positions = new FeedMessage { Header = Header(unix) };
        foreach (var v in vehicles)
        {
            var trip = v.Trip;
            var pattern = trip.Pattern;
            var descriptor = Descriptor(trip);
            var vehicle = new VehicleDescriptor { Id = v.VehicleLabel, Label = v.VehicleLabel };
            var reported = (ulong)((_city.ToUtc(v.ReportedMs / 1000.0) - DateTime.UnixEpoch).Ticks / TimeSpan.TicksPerSecond);

            // A typical agency: the current delay, carried unchanged to every stop still ahead; a bus waiting at
            // its first stop is predicted to leave on time (or now, if that is later).
            var tripUpdate = new TripUpdate { Trip = descriptor, Vehicle = vehicle, Timestamp = reported, Delay = v.DelaySeconds };
            var stopIndex = Math.Min(v.StopIndex, pattern.Stops.Length - 1);
            for (var k = stopIndex; k < pattern.Stops.Length; k++)
            {
                var delay = k == 0 ? Math.Max(0, v.DelaySeconds) : v.DelaySeconds;
                var update = new TripUpdate.Types.StopTimeUpdate
                {
                    StopSequence = (uint)(k + 1),
                    StopId = _city.Stops[pattern.Stops[k]].Id,
                    Arrival = Event(trip.Arrival[k], delay),
                    Departure = Event(trip.Departure[k], delay),
                };
                tripUpdate.StopTimeUpdate.Add(update);
            }

            updates.Entity.Add(new FeedEntity { Id = trip.Id, TripUpdate = tripUpdate });
            positions.Entity.Add(new FeedEntity
            {
                Id = v.VehicleLabel,
                Vehicle = new VehiclePosition
                {
                    Trip = Descriptor(trip),
                    Vehicle = vehicle.Clone(),
                    Position = new Position
                    {
                        Latitude = (float)v.Latitude,
                        Longitude = (float)v.Longitude,
                        Bearing = (float)Math.Round(v.Bearing),
                        Speed = (float)Math.Round(v.Speed, 1),
                    },
                    CurrentStopSequence = (uint)(stopIndex + 1),
                    StopId = _city.Stops[pattern.Stops[stopIndex]].Id,
                    CurrentStatus = v.AtStop ? VehiclePosition.Types.VehicleStopStatus.StoppedAt : VehiclePosition.Types.VehicleStopStatus.InTransitTo,
                    Timestamp = reported,
                },
            });
        }

        var receiveTicks = _city.ServiceDayStartUtc.Ticks + ((generatedMs + 1000) * TimeSpan.TicksPerMillisecond);
        Write(recording, receiveTicks, TripUpdatesTopic, updates);
        Write(recording, receiveTicks + 1000, VehiclePositionsTopic, positions);
    }

    private static FeedHeader Header(ulong unix) => new()
    {
        GtfsRealtimeVersion = "2.0",
        Incrementality = FeedHeader.Types.Incrementality.FullDataset,
        Timestamp = unix,
    };

    private TripDescriptor Descriptor(Trip trip)
    {
        var start = TimeSpan.FromSeconds(trip.StartSeconds);
        return new TripDescriptor
        {
            TripId = trip.Id,
            RouteId = trip.Pattern.Route.Id,
            DirectionId = (uint)trip.Pattern.Direction,
            StartDate = _startDate,
            StartTime = string.Create(CultureInfo.InvariantCulture, $"{(int)start.TotalHours:D2}:{start.Minutes:D2}:{start.Seconds:D2}"),
            ScheduleRelationship = TripDescriptor.Types.ScheduleRelationship.Scheduled,
        };
    }

    private TripUpdate.Types.StopTimeEvent Event(int scheduledSeconds, int delay) => new()
    {
        Delay = delay,
        Time = (long)((_city.ToUtc(scheduledSeconds + delay) - DateTime.UnixEpoch).Ticks / TimeSpan.TicksPerSecond),
    };

    private void Write(OrderedRecording recording, long receiveTicks, string topic, FeedMessage message)
    {
        var bytes = message.ToByteArray();
        _line.Clear();
        _line.Append(topic).Append((byte)' ').Append(Encoding.ASCII.GetBytes(Convert.ToBase64String(bytes)));
        recording.Add(receiveTicks, _line.Written);
        Count++;
    }
}
