using Microsoft.Extensions.Logging;

namespace Fleet.Actors;

/// <summary>The runtime's log messages (event ids 2000-2099 actors; 3000-3099 persistence).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 2001, Level = LogLevel.Error, Message = "Shard {ShardId} of region {Region}: loop iteration failed; continuing")]
    public static partial void ShardLoopFailed(ILogger logger, string region, int shardId, Exception error);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Error, Message = "Entity {EntityId} of region {Region} stopped in state {State}: its state is no longer known")]
    public static partial void EntityStopped(ILogger logger, string region, string entityId, EntityState state, Exception error);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Error, Message = "Entity {EntityId} of region {Region}: illegal transition {From} -> {To}")]
    public static partial void IllegalTransition(ILogger logger, string region, string entityId, EntityState from, EntityState to);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Warning, Message = "Shard {ShardId} of region {Region}: a deferred send failed")]
    public static partial void SendFailed(ILogger logger, string region, int shardId, Exception error);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Warning, Message = "Region {Region}: the lifecycle observer threw")]
    public static partial void ObserverFailed(ILogger logger, string region, Exception error);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Information, Message = "Region {Region}: starting {Count} remembered entities")]
    public static partial void StartingRemembered(ILogger logger, string region, int count);

    [LoggerMessage(EventId = 2007, Level = LogLevel.Information, Message = "Region {Region} stopped: {Entities} entities drained, journal flushed")]
    public static partial void RegionStopped(ILogger logger, string region, long entities);

    [LoggerMessage(EventId = 2008, Level = LogLevel.Error, Message = "Shard {ShardId} of region {Region}: the journal's recovery call threw; its entities are stopped")]
    public static partial void RecoveryFailed(ILogger logger, string region, int shardId, Exception error);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "Entity {EntityId} of region {Region}: snapshot failed")]
    public static partial void SnapshotFailed(ILogger logger, string region, string entityId, Exception error);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Entity {EntityId} of region {Region}: remember-entity write failed")]
    public static partial void RememberFailed(ILogger logger, string region, string entityId, Exception error);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Error, Message = "Journal {Journal}: batch of {Count} writes failed; retrying them one by one")]
    public static partial void BatchFailed(ILogger logger, string journal, int count, Exception error);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Error, Message = "Journal {Journal}: write failed")]
    public static partial void WriteFailed(ILogger logger, string journal, Exception error);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Error, Message = "Journal {Journal}: writer loop iteration failed; continuing")]
    public static partial void WriterLoopFailed(ILogger logger, string journal, Exception error);
}
