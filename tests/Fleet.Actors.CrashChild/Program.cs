using Fleet.Actors;
using Fleet.Actors.Persistence;

// Usage: Fleet.Actors.CrashChild <journal.db> <entities>
// Sends 1, 2, 3, ... to every entity, forever. Each entity persists the value as an event and, only after the
// journal has stored it, prints "ack <entity> <value>" on stdout. The crash test kills this process with SIGKILL
// and then checks that every acknowledged event is in the journal, in order, without duplicates.
if (args.Length != 2 || !int.TryParse(args[1], out var entities) || entities <= 0)
{
    Console.Error.WriteLine("usage: Fleet.Actors.CrashChild <journal.db> <entities>");
    return 2;
}

var journal = new SqliteJournal(new SqliteJournalOptions { Path = args[0], MaxBatchSize = 256 });
var region = new ShardRegion<int>("crash", id => new Appender(id), new ShardRegionOptions { ShardCount = 8 }, journal);
var ids = Enumerable.Range(0, entities).Select(i => $"e{i}").ToArray();
Console.Out.WriteLine("ready");
for (var value = 1; ; value++)
{
    foreach (var id in ids)
    {
        await region.TellAsync(id, value);
    }
}

/// <summary>Persists every value it gets; acknowledges on stdout after the write.</summary>
internal sealed class Appender(string id) : PersistentEntity<int, int, int>(0)
{
    private static readonly Lock s_console = new();

    protected override int Apply(int state, int @event) => @event;

    protected override void Receive(int message) => Persist(message, () =>
    {
        lock (s_console)
        {
            Console.Out.WriteLine($"ack {id} {message}");
        }
    });
}
