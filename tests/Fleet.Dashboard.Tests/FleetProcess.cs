using System.Diagnostics;
using System.Globalization;
using System.Text;
using Fleet.Testing;

namespace Fleet.Dashboard.Tests;

/// <summary>
/// The real <c>fleet</c> CLI as a child process (<c>dotnet fleet.dll ...</c>), for tests that must kill it:
/// <see cref="Kill"/> sends SIGKILL. Output is collected for failure messages. Disposing kills what is left.
/// </summary>
internal sealed class FleetProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private FleetProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>The exit code, once <see cref="HasExited"/>.</summary>
    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>fleet.dll of the same configuration: beside the tests (copied with the project reference) or in artifacts/bin/Fleet.Dashboard.</summary>
    public static string Dll
    {
        get
        {
            var own = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            var beside = Path.Combine(own.FullName, "fleet.dll");
            var built = Path.Combine(own.Parent!.Parent!.FullName, "Fleet.Dashboard", own.Name, "fleet.dll");
            return File.Exists(built) ? built : beside;
        }
    }

    public static FleetProcess Start(params string[] args) => StartIn(Path.GetTempPath(), args);

    /// <summary>Starts fleet with <paramref name="workingDirectory"/> as its current folder.</summary>
    public static FleetProcess StartIn(string workingDirectory, params string[] args)
    {
        var dll = Dll;
        Assert.True(File.Exists(dll), $"fleet not built: {dll}");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        info.ArgumentList.Add(dll);
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        return new FleetProcess(Process.Start(info) ?? throw new InvalidOperationException("could not start fleet"));
    }

    /// <summary>SIGKILL: no shutdown code runs.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.WaitForExit(10_000);
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    /// <summary>What a finished command printed, and its exit code (-1 when it was killed for taking too long).</summary>
    internal readonly record struct Finished(int Exit, string Stdout, string Stderr)
    {
        /// <summary>Both streams, for failure messages and for what a command says on either.</summary>
        public string Output => Stderr + Stdout;
    }

    /// <summary>Runs a command to its end (killed after <paramref name="timeout"/>), collecting both streams.</summary>
    public static async Task<Finished> RunToEndAsync(string file, string workingDirectory, TimeSpan timeout, params string[] args)
    {
        var ct = TestContext.Current.CancellationToken;
        var info = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            return new Finished(-1, await stdout, $"{file} {string.Join(' ', args)}: timed out after {timeout}\n{await stderr}");
        }

        return new Finished(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs <c>fleet</c> (this build's fleet.dll) to its end.</summary>
    public static Task<Finished> RunFleetAsync(string workingDirectory, TimeSpan timeout, params string[] args) =>
        RunToEndAsync("dotnet", workingDirectory, timeout, [Dll, .. args]);

    /// <summary>A free loopback URL for <c>--urls</c>.</summary>
    public static string FreeUrl() => "http://127.0.0.1:" + FreePort.Next().ToString(CultureInfo.InvariantCulture);

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }
}
