using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Fleet.Testing;

/// <summary>How a <see cref="Mosquitto"/> broker is configured.</summary>
public sealed class MosquittoOptions
{
    /// <summary>User name and password pairs; when non-empty, anonymous clients are refused.</summary>
    public IReadOnlyDictionary<string, string> Users { get; init; } = new Dictionary<string, string>();

    /// <summary>Messages the broker queues per offline persistent session (and in flight). Default 1,000,000.</summary>
    public int MaxQueuedMessages { get; init; } = 1_000_000;

    /// <summary>QoS 1 messages in flight to one client at once (mosquitto's default is 20). Default 20.</summary>
    public int MaxInflightMessages { get; init; } = 20;
}

/// <summary>
/// A real mosquitto broker (Debian package, /usr/sbin/mosquitto) on a free loopback port, with its own config,
/// password file and persistence database in a temp directory.
/// </summary>
/// <remarks>
/// <para>
/// The broker runs in its own session and process group (<c>setsid</c>), so signals meant for the test host do not
/// reach it and stopping it touches nothing else. <see cref="StopAsync"/> sends SIGTERM, on which mosquitto saves
/// its database, so persistent sessions and their queued messages survive <see cref="RestartAsync"/> on the same port.
/// </para>
/// <para>
/// No broker outlives the test run: <see cref="DisposeAsync"/> stops it, a process-exit hook stops any left over,
/// and a watchdog shell (also in the broker's group) kills the broker if the test host dies without either.
/// </para>
/// Thread-safety: one test drives one instance at a time.
/// </remarks>
public sealed class Mosquitto : IAsyncDisposable
{
    private const string Binary = "/usr/sbin/mosquitto";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
    private static readonly object s_liveGate = new();
    private static readonly HashSet<Mosquitto> s_live = [];

    private readonly string _configPath;
    private Process? _process;
    private Process? _watchdog;

    static Mosquitto()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            Mosquitto[] left;
            lock (s_liveGate)
            {
                left = [.. s_live];
            }

            foreach (var m in left)
            {
                m.KillNow();
            }
        };
    }

    private Mosquitto(string directory, int port, string configPath)
    {
        Directory = directory;
        Port = port;
        _configPath = configPath;
    }

    /// <summary>The loopback port the broker listens on (the same after a restart).</summary>
    public int Port { get; }

    /// <summary>The broker's temp directory (config, password file, database, log).</summary>
    public string Directory { get; }

    /// <summary>The broker URL for the client: <c>mqtt://127.0.0.1:port</c>.</summary>
    public Uri Url => new($"mqtt://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}");

    /// <summary>The broker's log so far (for failure messages).</summary>
    public string Log
    {
        get
        {
            var path = Path.Combine(Directory, "mosquitto.log");
            try
            {
                return File.Exists(path) ? File.ReadAllText(path) : "(no log)";
            }
            catch (IOException ex)
            {
                return $"(log unreadable: {ex.Message})";
            }
        }
    }

    /// <summary>Whether the broker binary is installed (test.sh installs it).</summary>
    public static bool IsInstalled => File.Exists(Binary);

    /// <summary>Writes the config and starts the broker; returns once it accepts TCP connections.</summary>
    public static async Task<Mosquitto> StartAsync(MosquittoOptions? options = null)
    {
        options ??= new MosquittoOptions();
        if (!IsInstalled)
        {
            throw new InvalidOperationException($"{Binary} not found: install the Debian package 'mosquitto' (./test.sh does)");
        }

        var dir = System.IO.Directory.CreateTempSubdirectory("fleet-mosquitto-").FullName;
        var port = FreePort.Next();
        var config = new StringBuilder();
        config.AppendLine(CultureInfo.InvariantCulture, $"listener {port} 127.0.0.1");

        // Run as whoever runs the tests: as root, mosquitto would otherwise drop to user 'mosquitto' and could not
        // write into our private temp directory.
        config.AppendLine(CultureInfo.InvariantCulture, $"user {Environment.UserName}");
        config.AppendLine("persistence true");
        config.AppendLine(CultureInfo.InvariantCulture, $"persistence_location {dir}/");
        config.AppendLine("autosave_interval 3600");
        config.AppendLine(CultureInfo.InvariantCulture, $"max_queued_messages {options.MaxQueuedMessages}");
        config.AppendLine(CultureInfo.InvariantCulture, $"max_inflight_messages {options.MaxInflightMessages}");
        config.AppendLine(CultureInfo.InvariantCulture, $"log_dest file {dir}/mosquitto.log");
        config.AppendLine("log_type error");
        config.AppendLine("log_type warning");
        config.AppendLine("log_type notice");
        config.AppendLine("log_type information");
        if (options.Users.Count > 0)
        {
            var passwordFile = Path.Combine(dir, "passwd");
            foreach (var (user, password) in options.Users)
            {
                await RunToEndAsync("mosquitto_passwd", File.Exists(passwordFile) ? ["-b", passwordFile, user, password] : ["-b", "-c", passwordFile, user, password]).ConfigureAwait(false);
            }

            config.AppendLine("allow_anonymous false");
            config.AppendLine(CultureInfo.InvariantCulture, $"password_file {passwordFile}");
        }
        else
        {
            config.AppendLine("allow_anonymous true");
        }

        var configPath = Path.Combine(dir, "mosquitto.conf");
        await File.WriteAllTextAsync(configPath, config.ToString()).ConfigureAwait(false);
        var broker = new Mosquitto(dir, port, configPath);
        await broker.LaunchAsync().ConfigureAwait(false);
        return broker;
    }

    /// <summary>SIGTERM (mosquitto saves its database), then waits for the process to exit.</summary>
    public async Task StopAsync()
    {
        var process = _process;
        if (process is null)
        {
            return;
        }

        await RunToEndAsync("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]).ConfigureAwait(false);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            await process.WaitForExitAsync().ConfigureAwait(false);
        }

        Forget();
    }

    /// <summary>SIGKILL: the broker dies without saving (what a crash looks like).</summary>
    public async Task KillAsync()
    {
        var process = _process;
        if (process is null)
        {
            return;
        }

        process.Kill();
        await process.WaitForExitAsync().ConfigureAwait(false);
        Forget();
    }

    /// <summary>Stops the broker (gracefully) and starts it again on the same port with the same database.</summary>
    public async Task RestartAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await LaunchAsync().ConfigureAwait(false);
    }

    /// <summary>Starts the broker again after <see cref="StopAsync"/> or <see cref="KillAsync"/>.</summary>
    public Task StartAgainAsync() => _process is null ? LaunchAsync() : Task.CompletedTask;

    /// <summary>Stops the broker and deletes its directory.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A temp directory left behind is harmless.
        }
    }

    private async Task LaunchAsync()
    {
        var start = new ProcessStartInfo("setsid")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };

        // The test host is not a process group leader, so setsid execs mosquitto in place: the PID we get is the
        // broker's and WaitForExit works on it.
        start.ArgumentList.Add(Binary);
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(_configPath);
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start mosquitto");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        lock (s_liveGate)
        {
            s_live.Add(this);
        }

        StartWatchdog(process.Id);

        // Poll with a deadline: the broker is an external process with no readiness signal but its port.
        var deadline = DateTime.UtcNow + StartTimeout;
        while (true)
        {
            if (process.HasExited)
            {
                Forget();
                throw new InvalidOperationException($"mosquitto exited with code {process.ExitCode} on port {Port}; log:\n{Log}");
            }

            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync("127.0.0.1", Port).ConfigureAwait(false);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(20).ConfigureAwait(false);
            }
            catch (SocketException ex)
            {
                KillNow();
                throw new InvalidOperationException($"mosquitto did not accept connections on port {Port} within {StartTimeout.TotalSeconds} s: {ex.Message}; log:\n{Log}", ex);
            }
        }
    }

    /// <summary>A shell that kills the broker when the test host disappears, and ends when the broker does.</summary>
    private void StartWatchdog(int brokerPid)
    {
        var script = $"while kill -0 {brokerPid} 2>/dev/null; do " +
            $"if ! kill -0 {Environment.ProcessId} 2>/dev/null; then kill -9 {brokerPid}; exit 0; fi; sleep 1; done";
        var start = new ProcessStartInfo("setsid") { UseShellExecute = false };
        start.ArgumentList.Add("sh");
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        _watchdog = Process.Start(start);
    }

    private void KillNow()
    {
        try
        {
            _process?.Kill();
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        Forget();
    }

    private void Forget()
    {
        _process?.Dispose();
        _process = null;
        try
        {
            _watchdog?.Kill();
        }
        catch (InvalidOperationException)
        {
            // The watchdog ends by itself once the broker is gone.
        }

        _watchdog?.Dispose();
        _watchdog = null;
        lock (s_liveGate)
        {
            s_live.Remove(this);
        }
    }

    private static async Task RunToEndAsync(string file, string[] args)
    {
        var start = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var p = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        var stderr = p.StandardError.ReadToEndAsync();
        await p.StandardOutput.ReadToEndAsync().ConfigureAwait(false);
        await p.WaitForExitAsync().ConfigureAwait(false);
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {await stderr.ConfigureAwait(false)}");
        }
    }
}
