using Microsoft.Extensions.Logging;

namespace Fleet.Actors;

/// <summary>Why a message ended in the dead letters.</summary>
public enum DeadLetterReason
{
    /// <summary>The handler threw; the message is retried after the entity restarts.</summary>
    HandlerFailed,
    /// <summary>The handler threw on the last allowed attempt; the message is dropped.</summary>
    MaxAttemptsExceeded,
    /// <summary>The entity was stopped (journal write or recovery failure) with the message still buffered.</summary>
    EntityStopped,
    /// <summary>The entity's continuation after a persisted write threw (the events are stored; not retried).</summary>
    ContinuationFailed,
}

/// <summary>One dead letter.</summary>
/// <param name="Region">The region.</param>
/// <param name="EntityId">The entity the message was for.</param>
/// <param name="Message">The message (null for a continuation failure).</param>
/// <param name="Reason">Why.</param>
/// <param name="Attempt">Which delivery attempt failed (1-based; 0 when not a delivery).</param>
/// <param name="Error">The exception, if any.</param>
/// <param name="Timestamp">When, by the region's clock.</param>
public sealed record DeadLetter(
    string Region,
    string EntityId,
    object? Message,
    DeadLetterReason Reason,
    int Attempt,
    Exception? Error,
    DateTimeOffset Timestamp);

/// <summary>Counts, logs and keeps the most recent dead letters of a region.</summary>
/// <remarks>Thread-safe. Keeps at most <see cref="ShardRegionOptions.DeadLetterHistory"/> letters.</remarks>
public sealed partial class DeadLetterOffice
{
    private readonly object _gate = new();
    private readonly DeadLetter[] _ring;
    private readonly long[] _byReason = new long[Enum.GetValues<DeadLetterReason>().Length];
    private readonly ILogger _logger;
    private long _count;
    private int _next;

    internal DeadLetterOffice(int history, ILogger logger)
    {
        _ring = new DeadLetter[history];
        _logger = logger;
    }

    /// <summary>Dead letters so far.</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <summary>Dead letters so far with the given reason.</summary>
    public long CountOf(DeadLetterReason reason) => Interlocked.Read(ref _byReason[(int)reason]);

    /// <summary>The most recent dead letters, oldest first.</summary>
    public IReadOnlyList<DeadLetter> Recent()
    {
        lock (_gate)
        {
            var count = (int)Math.Min(_count, _ring.Length);
            var result = new DeadLetter[count];
            var start = (_next - count + _ring.Length) % _ring.Length;
            for (var i = 0; i < count; i++)
            {
                result[i] = _ring[(start + i) % _ring.Length];
            }

            return result;
        }
    }

    internal void Add(DeadLetter letter)
    {
        lock (_gate)
        {
            _ring[_next] = letter;
            _next = (_next + 1) % _ring.Length;
            _count++;
            _byReason[(int)letter.Reason]++;
        }

        LogDeadLetter(_logger, letter.Region, letter.EntityId, letter.Reason, letter.Attempt, letter.Message?.GetType().Name ?? "-", letter.Error);
    }

    [LoggerMessage(EventId = 2100, Level = LogLevel.Warning,
        Message = "Dead letter in region {Region}, entity {EntityId}: {Reason} (attempt {Attempt}, message {MessageType})")]
    private static partial void LogDeadLetter(ILogger logger, string region, string entityId, DeadLetterReason reason, int attempt, string messageType, Exception? error);
}
