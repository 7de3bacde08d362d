using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Fleet.Dashboard.Cli;

/// <summary>
/// A throw-away mosquitto (Debian package) on a free loopback port with its own config in a temp directory, for
/// <c>fleet bench mqtt</c>. Runs in its own session (<c>setsid</c>); stopped and deleted on dispose.
/// </summary>
internal sealed class LocalMosquitto : IAsyncDisposable
{
    public const string Binary = "/usr/sbin/mosquitto";

    private readonly Process _process;

    private LocalMosquitto(Process process, int port, string directory)
    {
        _process = process;
        Port = port;
        Directory = directory;
    }

    public int Port { get; }

    public string Directory { get; }

    public Uri Url => new($"mqtt://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}");

    /// <summary>Starts the broker; <paramref name="extraConfig"/> lines are appended to the generated config.</summary>
    public static async Task<LocalMosquitto> StartAsync(IEnumerable<string> extraConfig, CancellationToken cancellationToken)
    {
        if (!File.Exists(Binary))
        {
            throw new InvalidOperationException($"{Binary} not found: install the Debian package 'mosquitto'");
        }

        var dir = System.IO.Directory.CreateTempSubdirectory("fleet-bench-mosquitto-").FullName;
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        string[] config =
        [
            $"listener {port} 127.0.0.1",
            "allow_anonymous true",
            $"user {Environment.UserName}",
            "persistence false",
            $"log_dest file {dir}/mosquitto.log",
            .. extraConfig,
        ];
        var configPath = Path.Combine(dir, "mosquitto.conf");
        await File.WriteAllLinesAsync(configPath, config, cancellationToken).ConfigureAwait(false);
        var start = new ProcessStartInfo("setsid") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(Binary);
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(configPath);
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start mosquitto");

        // Drain (and drop) its console: the log goes to the file; "should not be run as root" is noise here.
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var broker = new LocalMosquitto(process, port, dir);

        // Poll with a deadline: the port is the only readiness signal mosquitto gives.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port, cancellationToken).ConfigureAwait(false);
                return broker;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !process.HasExited)
            {
                await Task.Delay(20, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                await broker.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync().ConfigureAwait(false);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A temp directory left behind is harmless.
        }
    }
}
