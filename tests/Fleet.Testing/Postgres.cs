using System.Diagnostics;

namespace Fleet.Testing;

/// <summary>
/// A throwaway PostgreSQL server for integration tests: the Debian package's binaries
/// (<c>/usr/lib/postgresql/*/bin</c>), <c>initdb</c> in a temp folder, a free loopback port, trust auth.
/// </summary>
/// <remarks>
/// initdb and postgres refuse to run as root, so when the tests run as root the server runs as the
/// <c>postgres</c> user (<c>runuser</c>) with the temp folder handed to it. <see cref="DisposeAsync"/> stops
/// the server (<c>pg_ctl -m immediate</c>) and deletes the folder. Use one instance per test class
/// (<c>IClassFixture</c>); <c>test.sh</c> installs the <c>postgresql</c> package when it is missing.
/// </remarks>
public sealed class PostgresServer : IAsyncDisposable
{
    private readonly string _bin;
    private readonly string _dir;
    private readonly bool _asPostgresUser;

    private PostgresServer(string bin, string dir, int port, bool asPostgresUser)
    {
        _bin = bin;
        _dir = dir;
        Port = port;
        _asPostgresUser = asPostgresUser;
    }

    /// <summary>The loopback port the server listens on.</summary>
    public int Port { get; }

    /// <summary>Connection string for the <c>postgres</c> database as the <c>postgres</c> superuser.</summary>
    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Pooling=true;Timeout=10";

    /// <summary>Finds the binaries, runs initdb and starts the server; fails with a clear message when PostgreSQL is not installed.</summary>
    public static async Task<PostgresServer> StartAsync()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin"))
                .Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderDescending(StringComparer.Ordinal).FirstOrDefault()
            : null;
        if (bin is null)
        {
            throw new InvalidOperationException("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin; install the 'postgresql' package (test.sh does)");
        }

        var dir = Directory.CreateTempSubdirectory("fleet-pg-").FullName;
        var asPostgres = Environment.UserName == "root";
        if (asPostgres)
        {
            await RunAsync("chown", ["-R", "postgres:postgres", dir]).ConfigureAwait(false);
        }

        var port = FreePort.Next();
        var server = new PostgresServer(bin, dir, port, asPostgres);
        try
        {
            await server.PgAsync("initdb", ["-D", Path.Combine(dir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]).ConfigureAwait(false);
            await server.PgAsync("pg_ctl", ["-D", Path.Combine(dir, "data"), "-l", Path.Combine(dir, "server.log"), "-w", "-t", "30",
                "-o", $"-c listen_addresses=127.0.0.1 -p {port} -k {dir} -c fsync=off -c full_page_writes=off", "start"]).ConfigureAwait(false);
            return server;
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private Task PgAsync(string tool, string[] args)
    {
        var exe = Path.Combine(_bin, tool);
        return _asPostgresUser ? RunAsync("runuser", ["-u", "postgres", "--", exe, .. args]) : RunAsync(exe, args);
    }

    private static async Task RunAsync(string file, string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {process.ExitCode}: {await stderr.ConfigureAwait(false)}{await stdout.ConfigureAwait(false)}");
        }
    }

    /// <summary>Stops the server and deletes its folder.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (File.Exists(Path.Combine(_dir, "data", "postmaster.pid")))
            {
                await PgAsync("pg_ctl", ["-D", Path.Combine(_dir, "data"), "-m", "immediate", "-w", "stop"]).ConfigureAwait(false);
            }
        }
        finally
        {
            Directory.Delete(_dir, recursive: true);
        }
    }
}
