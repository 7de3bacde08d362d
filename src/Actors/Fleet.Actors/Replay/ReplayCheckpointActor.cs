using Akka.Actor;
using Akka.Persistence;
using Fleet.Actors.Partitions;

namespace Fleet.Actors.Replay;

/// <summary>Where a persisted replay had got to: its round (a new partition region per pass) and line.</summary>
/// <param name="Round">The tracking round (0 for the first pass).</param>
/// <param name="Line">Line within the pass (1-based), 0 before the first.</param>
public sealed record ReplayCheckpoint(int Round, long Line) : IFleetMessage;

/// <summary>Query: the last checkpoint saved (answered with a <see cref="ReplayCheckpoint"/>, (0, 0) when none).</summary>
public sealed record GetReplayCheckpoint : IFleetMessage
{
    /// <summary>The one instance.</summary>
    public static readonly GetReplayCheckpoint Instance = new();
}

/// <summary>
/// A replay's checkpoint as a persistent actor: each <see cref="ReplayCheckpoint"/> it is told becomes its snapshot
/// (the older ones deleted), so a restart knows which round to resume and up to which line to skip pacing.
/// </summary>
public sealed class ReplayCheckpointActor : ReceivePersistentActor
{
    private ReplayCheckpoint _last = new(0, 0);

    /// <summary>Creates the checkpoint of the recording named <paramref name="recording"/>.</summary>
    public ReplayCheckpointActor(string recording)
    {
        PersistenceId = "replay/" + recording;
        Recover<SnapshotOffer>(o =>
        {
            if (o.Snapshot is ReplayCheckpoint c)
            {
                _last = c;
            }
        });
        Command<ReplayCheckpoint>(c =>
        {
            // Only forward: a checkpoint never goes back (a late save of an older position is ignored).
            if (c.Round > _last.Round || (c.Round == _last.Round && c.Line > _last.Line))
            {
                _last = c;
                SaveSnapshot(c);
            }
        });
        Command<GetReplayCheckpoint>(_ => Sender.Tell(_last));
        Command<SaveSnapshotSuccess>(ok => DeleteSnapshots(new SnapshotSelectionCriteria(ok.Metadata.SequenceNr, ok.Metadata.Timestamp.AddTicks(-1))));
        Command<SaveSnapshotFailure>(_ => { });
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(_ => { });
    }

    /// <inheritdoc />
    public override string PersistenceId { get; }
}
