using Fleet.Actors.Hosting;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Hosting;

/// <summary>The kind of store behind <c>fleet serve --store</c>.</summary>
public enum StoreKind
{
    /// <summary>An embedded SQLite database file.</summary>
    Sqlite,
    /// <summary>A PostgreSQL database.</summary>
    Postgres,
}

/// <summary>
/// Where <c>fleet serve</c> persists vehicle state: <c>sqlite:PATH</c> or <c>postgres:CONNECTION-STRING</c>
/// (Akka.Persistence.Sql: the journal and snapshots of the tracking partitions, see <see cref="FleetAkka"/>).
/// </summary>
/// <param name="Kind">SQLite or PostgreSQL.</param>
/// <param name="Target">The SQLite file path, or the PostgreSQL connection string.</param>
public sealed record StoreSpec(StoreKind Kind, string Target)
{
    /// <summary>What serve uses with no options: <c>sqlite:.fleet/fleet.db</c> under the working directory.</summary>
    public static StoreSpec Default => new(StoreKind.Sqlite, Path.Combine(".fleet", "fleet.db"));

    /// <summary>Parses <c>sqlite:PATH</c> or <c>postgres:CONNSTR</c>; returns null and a message when malformed.</summary>
    public static StoreSpec? TryParse(string? text, out string? error)
    {
        error = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "empty store: use sqlite:PATH or postgres:CONNECTION-STRING";
            return null;
        }

        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var scheme = colon < 0 ? text : text[..colon];
        var target = colon < 0 ? string.Empty : text[(colon + 1)..];
        var kind = scheme.ToUpperInvariant() switch
        {
            "SQLITE" => StoreKind.Sqlite,
            "POSTGRES" or "POSTGRESQL" => StoreKind.Postgres,
            _ => (StoreKind?)null,
        };
        if (kind is null)
        {
            error = $"unknown store '{scheme}': use sqlite:PATH or postgres:CONNECTION-STRING";
            return null;
        }

        if (target.Length == 0)
        {
            error = kind == StoreKind.Sqlite ? "sqlite: needs a file path (sqlite:.fleet/fleet.db)" : "postgres: needs a connection string (postgres:Host=127.0.0.1;Username=fleet;Database=fleet)";
            return null;
        }

        return new StoreSpec(kind.Value, target);
    }

    /// <summary>The Akka.NET settings of this store (partitions journal and snapshot with Akka.Persistence.Sql).</summary>
    public FleetAkkaOptions ToAkkaOptions() => new()
    {
        Journal = Kind == StoreKind.Sqlite ? JournalKind.Sqlite : JournalKind.Postgres,
        Connection = Target,
    };

    /// <summary>Checks the store can be used before anything starts: SQLite's folder and file (write-ahead log set),
    /// PostgreSQL's server and credentials. Throws what opening it throws.</summary>
    public async Task CheckAsync(CancellationToken cancellationToken = default)
    {
        if (Kind == StoreKind.Sqlite)
        {
            FleetAkka.PrepareStore(ToAkkaOptions());
            return;
        }

        var connection = new Npgsql.NpgsqlConnection(Target);
        await using (connection.ConfigureAwait(false))
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The spec for messages, without a PostgreSQL password.</summary>
    public override string ToString() => Kind == StoreKind.Sqlite
        ? "sqlite:" + Target
        : "postgres:" + string.Join(';', Target.Split(';').Where(p => !p.TrimStart().StartsWith("password", StringComparison.OrdinalIgnoreCase)));
}
