using System.Text;
using Akka.Actor;
using Akka.Serialization;
using Fleet.Actors.Partitions;
using Fleet.Ingest.Events;
using Fleet.Tracking.Output;

namespace Fleet.Actors.Serialization;

/// <summary>
/// Binary serializer of Fleet's messages and persisted events (<see cref="IFleetMessage"/>): what the journal and
/// snapshot store keep and what crosses nodes. Manifests are constants, so a stored row keeps meaning what it meant
/// after a rename; each is written field by field in a fixed order (BinaryWriter: little-endian numbers,
/// length-prefixed UTF-8 strings, a presence flag before each optional value).
/// </summary>
/// <remarks>Akka's default would be JSON (Newtonsoft): several times larger and slower for the journal's hot path.</remarks>
public sealed class FleetSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    /// <summary>The serializer's id (unique in the actor system; Akka's own are below 100).</summary>
    public const int Id = 7_311;

    private const string TrackBatchManifest = "TB";
    private const string BatchTrackedManifest = "BT";
    private const string BatchAcceptedManifest = "BA";
    private const string SnapshotManifest = "PS";
    private const string GetStatsManifest = "GS";
    private const string StatsManifest = "ST";
    private const string CheckpointManifest = "RC";
    private const string GetCheckpointManifest = "GC";
    private const string PositionsManifest = "PP";
    private const string StopUpdatesManifest = "SU";

    /// <inheritdoc />
    public override int Identifier => Id;

    /// <inheritdoc />
    public override string Manifest(object o) => o switch
    {
        TrackBatch => TrackBatchManifest,
        BatchTracked => BatchTrackedManifest,
        BatchAccepted => BatchAcceptedManifest,
        PartitionSnapshot => SnapshotManifest,
        GetPartitionStats => GetStatsManifest,
        PartitionStats => StatsManifest,
        Replay.ReplayCheckpoint => CheckpointManifest,
        Replay.GetReplayCheckpoint => GetCheckpointManifest,
        Streams.PositionsSeen => PositionsManifest,
        Streams.StopUpdatesSeen => StopUpdatesManifest,
        _ => throw new ArgumentException($"FleetSerializer cannot serialize {o?.GetType().FullName}", nameof(o)),
    };

    /// <inheritdoc />
    public override byte[] ToBinary(object obj)
    {
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            switch (obj)
            {
                case TrackBatch b:
                    w.Write(b.Partition);
                    WriteBatch(w, b.Events, b.Sequences, b.Clock);
                    WriteBatchId(w, b.Id);
                    break;
                case BatchAccepted a:
                    WriteBatch(w, a.Events, a.Sequences, a.Clock);
                    WriteBatchId(w, a.Id);
                    break;
                case BatchTracked t:
                    w.Write(t.Partition);
                    w.Write(t.Applied);
                    w.Write(t.AlreadyApplied);
                    w.Write(t.Drops.Late);
                    w.Write(t.Drops.Duplicates);
                    w.Write(t.Drops.Corrected);
                    w.Write(t.Drops.Unmatched);
                    w.Write(t.Derived.Length);
                    foreach (var d in t.Derived)
                    {
                        WriteDerived(w, d);
                    }

                    w.Write(t.Repeated);
                    break;
                case PartitionSnapshot s:
                    w.Write(s.States.Length);
                    w.Write(s.States);
                    w.Write(s.Recent?.Length ?? 0);
                    foreach (var id in s.Recent ?? [])
                    {
                        w.Write(id.Origin);
                        w.Write(id.Number);
                    }

                    break;
                case GetPartitionStats g:
                    w.Write(g.Partition);
                    break;
                case PartitionStats s:
                    w.Write(s.Partition);
                    w.Write(s.Vehicles);
                    w.Write(s.Applied);
                    w.Write(s.AlreadyApplied);
                    w.Write(s.LastSequenceNr);
                    w.Write(s.Recovered);
                    w.Write(s.RecoveredFromSnapshot);
                    break;
                case Replay.ReplayCheckpoint c:
                    w.Write(c.Round);
                    w.Write(c.Line);
                    break;
                case Replay.GetReplayCheckpoint:
                    break;
                case Streams.StopUpdatesSeen u:
                    w.Write(u.Updates.Length);
                    foreach (var x in u.Updates)
                    {
                        w.Write(x.Time.Ticks);
                        w.Write(x.TripId);
                        w.Write(x.ServiceDate?.DayNumber ?? -1);
                        WriteString(w, x.RouteId);
                        WriteString(w, x.VehicleId);
                        WriteString(w, x.StopId);
                        w.Write(x.StopSequence);
                        WriteTime(w, x.Arrival);
                        WriteTime(w, x.Departure);
                        WriteInt(w, x.DelaySeconds);
                        w.Write((byte)x.Status);
                    }

                    break;
                case Streams.PositionsSeen p:
                    w.Write(p.Origin);
                    w.Write(p.Events.Length);
                    foreach (var e in p.Events)
                    {
                        WriteEvent(w, e);
                    }

                    break;
                default:
                    throw new ArgumentException($"FleetSerializer cannot serialize {obj?.GetType().FullName}", nameof(obj));
            }
        }

        return stream.ToArray();
    }

    /// <inheritdoc />
    public override object FromBinary(byte[] bytes, string manifest)
    {
        using var r = new BinaryReader(new MemoryStream(bytes, writable: false), Encoding.UTF8);
        switch (manifest)
        {
            case TrackBatchManifest:
            {
                var partition = r.ReadInt32();
                var (events, sequences, clock) = ReadBatch(r);
                return new TrackBatch(partition, events, sequences, clock, ReadBatchId(r));
            }

            case BatchAcceptedManifest:
                return ReadBatchAccepted(r);

            case BatchTrackedManifest:
            {
                var partition = r.ReadInt32();
                var applied = r.ReadInt32();
                var already = r.ReadInt32();
                var drops = new Tracking.Partitions.TrackingDrops(r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64());
                var derived = new DerivedEvent[r.ReadInt32()];
                for (var i = 0; i < derived.Length; i++)
                {
                    derived[i] = ReadDerived(r);
                }

                return new BatchTracked(partition, derived, applied, already, drops, r.ReadBoolean());
            }

            case SnapshotManifest:
            {
                var states = r.ReadBytes(r.ReadInt32());
                // Snapshots written before batches had ids end here.
                var recent = new BatchId[Remaining(r) ? r.ReadInt32() : 0];
                for (var i = 0; i < recent.Length; i++)
                {
                    recent[i] = new BatchId(r.ReadString(), r.ReadInt64());
                }

                return new PartitionSnapshot(states, recent);
            }
            case GetStatsManifest:
                return new GetPartitionStats(r.ReadInt32());
            case StatsManifest:
                return new PartitionStats(r.ReadInt32(), r.ReadInt32(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadBoolean());
            case CheckpointManifest:
                return new Replay.ReplayCheckpoint(r.ReadInt32(), r.ReadInt64());
            case GetCheckpointManifest:
                return Replay.GetReplayCheckpoint.Instance;
            case StopUpdatesManifest:
            {
                var updates = new Tracking.Network.StopUpdate[r.ReadInt32()];
                for (var i = 0; i < updates.Length; i++)
                {
                    var time = new DateTime(r.ReadInt64(), DateTimeKind.Utc);
                    var trip = string.Intern(r.ReadString());
                    var day = r.ReadInt32();
                    updates[i] = new Tracking.Network.StopUpdate(time, trip, day < 0 ? null : DateOnly.FromDayNumber(day), ReadString(r), ReadString(r), ReadString(r),
                        r.ReadInt32(), ReadTime(r), ReadTime(r), ReadInt(r), (Tracking.Network.StopUpdateStatus)r.ReadByte());
                }

                return new Streams.StopUpdatesSeen(updates);
            }

            case PositionsManifest:
            {
                var origin = r.ReadString();
                var events = new VehicleEvent[r.ReadInt32()];
                for (var i = 0; i < events.Length; i++)
                {
                    events[i] = ReadEvent(r);
                }

                return new Streams.PositionsSeen(origin, events);
            }
            default:
                throw new System.Runtime.Serialization.SerializationException($"FleetSerializer: unknown manifest '{manifest}'");
        }
    }

    /// <summary>Reads a journaled <see cref="BatchAccepted"/> (manifest <c>BA</c>) without an actor system: for tools and tests that read the journal's rows.</summary>
    public static BatchAccepted ReadBatchAccepted(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        using var r = new BinaryReader(new MemoryStream(bytes, writable: false), Encoding.UTF8);
        return ReadBatchAccepted(r);
    }

    private static BatchAccepted ReadBatchAccepted(BinaryReader r)
    {
        var (events, sequences, clock) = ReadBatch(r);
        return new BatchAccepted(events, sequences, clock, ReadBatchId(r));
    }

    // A batch's id after it: a presence flag, then origin and number. Rows journaled before batches had ids end before it.
    private static void WriteBatchId(BinaryWriter w, BatchId? id)
    {
        w.Write(id is not null);
        if (id is not null)
        {
            w.Write(id.Origin);
            w.Write(id.Number);
        }
    }

    private static BatchId? ReadBatchId(BinaryReader r) =>
        Remaining(r) && r.ReadBoolean() ? new BatchId(r.ReadString(), r.ReadInt64()) : null;

    private static bool Remaining(BinaryReader r) => r.BaseStream.Position < r.BaseStream.Length;

    private static void WriteBatch(BinaryWriter w, VehicleEvent[] events, long[] sequences, DateTime clock)
    {
        w.Write(clock.Ticks);
        w.Write(events.Length);
        for (var i = 0; i < events.Length; i++)
        {
            w.Write(sequences.Length == 0 ? 0 : sequences[i]);
            WriteEvent(w, events[i]);
        }
    }

    private static (VehicleEvent[] Events, long[] Sequences, DateTime Clock) ReadBatch(BinaryReader r)
    {
        var clock = new DateTime(r.ReadInt64(), DateTimeKind.Utc);
        var n = r.ReadInt32();
        var events = new VehicleEvent[n];
        var sequences = new long[n];
        for (var i = 0; i < n; i++)
        {
            sequences[i] = r.ReadInt64();
            events[i] = ReadEvent(r);
        }

        return (events, sequences, clock);
    }

    /// <summary>Writes one vehicle event (every field, in declaration order).</summary>
    internal static void WriteEvent(BinaryWriter w, in VehicleEvent e)
    {
        w.Write((byte)e.Source);
        w.Write((byte)e.Type);
        w.Write((byte)e.Journey);
        w.Write((byte)e.Mode);
        w.Write(e.Upcoming);
        w.Write(e.VehicleId ?? string.Empty);
        w.Write(e.EventTime.Ticks);
        w.Write(e.ReceiveTime.Ticks);
        w.Write(e.Latitude);
        w.Write(e.Longitude);
        w.Write(e.Speed);
        w.Write(e.Heading);
        w.Write(e.Acceleration);
        w.Write(e.Odometer);
        w.Write(e.Doors);
        WriteInt(w, e.DelaySeconds);
        w.Write(e.OperatingDay?.DayNumber ?? -1);
        w.Write(e.StartTimeSeconds);
        WriteString(w, e.RouteId);
        w.Write(e.DirectionId);
        WriteString(w, e.TripId);
        WriteString(w, e.StopId);
        w.Write(e.StopSequence);
        WriteTime(w, e.ScheduledArrival);
        WriteTime(w, e.ScheduledDeparture);
        WriteTime(w, e.PredictedArrival);
        WriteTime(w, e.PredictedDeparture);
        w.Write(e.Occupancy);
        w.Write((byte)e.Location);
        w.Write(e.JourneyNumber);
        w.Write(e.IngestTimestamp);
    }

    /// <summary>Reads what <see cref="WriteEvent"/> wrote.</summary>
    internal static VehicleEvent ReadEvent(BinaryReader r)
    {
        var e = default(VehicleEvent);
        e.Source = (EventSource)r.ReadByte();
        e.Type = (EventType)r.ReadByte();
        e.Journey = (JourneyType)r.ReadByte();
        e.Mode = (TransportMode)r.ReadByte();
        e.Upcoming = r.ReadBoolean();
        e.VehicleId = string.Intern(r.ReadString());
        e.EventTime = new DateTime(r.ReadInt64(), DateTimeKind.Utc);
        e.ReceiveTime = new DateTime(r.ReadInt64(), DateTimeKind.Utc);
        e.Latitude = r.ReadDouble();
        e.Longitude = r.ReadDouble();
        e.Speed = r.ReadSingle();
        e.Heading = r.ReadSingle();
        e.Acceleration = r.ReadSingle();
        e.Odometer = r.ReadDouble();
        e.Doors = r.ReadSByte();
        e.DelaySeconds = ReadInt(r);
        var day = r.ReadInt32();
        e.OperatingDay = day < 0 ? null : DateOnly.FromDayNumber(day);
        e.StartTimeSeconds = r.ReadInt32();
        e.RouteId = ReadString(r);
        e.DirectionId = r.ReadSByte();
        e.TripId = ReadString(r);
        e.StopId = ReadString(r);
        e.StopSequence = r.ReadInt32();
        e.ScheduledArrival = ReadTime(r);
        e.ScheduledDeparture = ReadTime(r);
        e.PredictedArrival = ReadTime(r);
        e.PredictedDeparture = ReadTime(r);
        e.Occupancy = r.ReadInt32();
        e.Location = (LocationSource)r.ReadByte();
        e.JourneyNumber = r.ReadInt32();
        e.IngestTimestamp = r.ReadInt64();
        return e;
    }

    private static void WriteDerived(BinaryWriter w, DerivedEvent d)
    {
        w.Write((byte)d.Type);
        w.Write(d.Time.Ticks);
        WriteString(w, d.VehicleId);
        WriteString(w, d.TripId);
        WriteString(w, d.RouteId);
        w.Write(d.DirectionId);
        w.Write(d.ServiceDate?.DayNumber ?? -1);
        WriteString(w, d.StopId);
        w.Write(d.StopSequence);
        WriteInt(w, d.DelaySeconds);
        WriteTime(w, d.Scheduled);
        WriteInt(w, d.ScheduledHeadwaySeconds);
        WriteTime(w, d.Predicted);
        WriteTime(w, d.PredictedLow);
        WriteTime(w, d.PredictedHigh);
        w.Write((byte)d.Kind);
        w.Write(d.Cleared);
        w.Write((byte)d.Source);
        w.Write(d.Value.HasValue);
        w.Write(d.Value ?? 0);
        WriteString(w, d.Other);
        w.Write((byte)d.Mode);
        w.Write(d.Latitude);
        w.Write(d.Longitude);
        w.Write(d.IngestTimestamp);
        w.Write(d.NextTrip);
    }

    private static DerivedEvent ReadDerived(BinaryReader r)
    {
        var type = (DerivedEventType)r.ReadByte();
        var time = new DateTime(r.ReadInt64(), DateTimeKind.Utc);
        var vehicle = ReadString(r);
        var trip = ReadString(r);
        var route = ReadString(r);
        var direction = r.ReadSByte();
        var day = r.ReadInt32();
        var stop = ReadString(r);
        var sequence = r.ReadInt32();
        var delay = ReadInt(r);
        var scheduled = ReadTime(r);
        var headway = ReadInt(r);
        var predicted = ReadTime(r);
        var low = ReadTime(r);
        var high = ReadTime(r);
        var kind = (AlertKind)r.ReadByte();
        var cleared = r.ReadBoolean();
        var source = (DetectionSource)r.ReadByte();
        var hasValue = r.ReadBoolean();
        var value = r.ReadDouble();
        return new DerivedEvent
        {
            Type = type,
            Time = time,
            VehicleId = vehicle,
            TripId = trip,
            RouteId = route,
            DirectionId = direction,
            ServiceDate = day < 0 ? null : DateOnly.FromDayNumber(day),
            StopId = stop,
            StopSequence = sequence,
            DelaySeconds = delay,
            Scheduled = scheduled,
            ScheduledHeadwaySeconds = headway,
            Predicted = predicted,
            PredictedLow = low,
            PredictedHigh = high,
            Kind = kind,
            Cleared = cleared,
            Source = source,
            Value = hasValue ? value : null,
            Other = ReadString(r),
            Mode = (TransportMode)r.ReadByte(),
            Latitude = r.ReadDouble(),
            Longitude = r.ReadDouble(),
            IngestTimestamp = r.ReadInt64(),
            NextTrip = r.ReadBoolean(),
        };
    }

    private static void WriteString(BinaryWriter w, string? s)
    {
        w.Write(s is not null);
        if (s is not null)
        {
            w.Write(s);
        }
    }

    private static string? ReadString(BinaryReader r) => r.ReadBoolean() ? string.Intern(r.ReadString()) : null;

    private static void WriteInt(BinaryWriter w, int? v)
    {
        w.Write(v.HasValue);
        w.Write(v ?? 0);
    }

    private static int? ReadInt(BinaryReader r)
    {
        var has = r.ReadBoolean();
        var v = r.ReadInt32();
        return has ? v : null;
    }

    private static void WriteTime(BinaryWriter w, DateTime? t) => w.Write(t?.Ticks ?? -1);

    private static DateTime? ReadTime(BinaryReader r)
    {
        var ticks = r.ReadInt64();
        return ticks < 0 ? null : new DateTime(ticks, DateTimeKind.Utc);
    }
}
