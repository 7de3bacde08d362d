using Fleet.Actors.Persistence;

namespace Fleet.Actors;

/// <summary>A region's counters at one moment, for a <c>/metrics</c> endpoint or the bench.</summary>
/// <param name="Region">The region's name.</param>
/// <param name="Shards">Number of shards.</param>
/// <param name="LiveEntities">Entities in memory.</param>
/// <param name="MessagesProcessed">Messages handed to entities since start.</param>
/// <param name="MessagesPerSecond">Rate since the previous <see cref="ShardRegion{TMessage}.GetMetrics"/> call (0 on the first).</param>
/// <param name="MailboxDepth">Messages waiting in all shard mailboxes.</param>
/// <param name="MaxMailboxDepth">Deepest single shard mailbox.</param>
/// <param name="BufferedMessages">Messages buffered for entities that recover, persist, passivate or restart.</param>
/// <param name="DeadLetters">Dead letters since start.</param>
/// <param name="Restarts">Entity restarts after failures.</param>
/// <param name="Passivations">Entities passivated.</param>
/// <param name="Recoveries">Entities recovered from the journal.</param>
/// <param name="StoppedEntities">Entities stopped because their state became unknown.</param>
/// <param name="Journal">The journal's counters (null without a journal).</param>
public sealed record ShardRegionMetrics(
    string Region,
    int Shards,
    long LiveEntities,
    long MessagesProcessed,
    double MessagesPerSecond,
    long MailboxDepth,
    int MaxMailboxDepth,
    long BufferedMessages,
    long DeadLetters,
    long Restarts,
    long Passivations,
    long Recoveries,
    long StoppedEntities,
    JournalMetrics? Journal);
