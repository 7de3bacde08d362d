using System.Diagnostics;
using System.Text.Json;
using Fleet.Testing;

namespace Fleet.Dashboard.Tests;

/// <summary>Runs alone: packing builds the whole solution in Release, which would slow every test beside it.</summary>
[CollectionDefinition(nameof(ToolPackageTests), DisableParallelization = true)]
public sealed class ToolPackageCollection;

/// <summary><c>fleet</c> as a .NET tool: packed, installed into a tool path, run from anywhere.</summary>
[Collection(nameof(ToolPackageTests))]
[Trait("Category", "Integration")]
public sealed class ToolPackageTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task PackAndInstall_FleetOnThePath_RunsWithItsPageAndSampleCity()
    {
        var dir = Directory.CreateTempSubdirectory("fleet-tool-").FullName;
        try
        {
            // As the README says, with a separate artifacts folder so the suite's own build is left alone.
            var (packExit, packOut) = await RunAsync("dotnet", RepoPaths.Root, TimeSpan.FromMinutes(6),
                "pack", "src/Dashboard", "-c", "Release", "-o", Path.Combine(dir, "nupkg"), "--artifacts-path", Path.Combine(dir, "artifacts"),
                "-p:SkipClientBuild=true", "-nologo", "-v:q");
            Assert.True(packExit == 0, packOut);
            var (installExit, installOut) = await RunAsync("dotnet", dir, TimeSpan.FromMinutes(2),
                "tool", "install", "Fleet", "--tool-path", Path.Combine(dir, "tools"), "--add-source", Path.Combine(dir, "nupkg"));
            Assert.True(installExit == 0, installOut);
            var fleet = Path.Combine(dir, "tools", "fleet");

            var (exit, output) = await RunAsync(fleet, dir, TimeSpan.FromMinutes(1), "inspect", Path.Combine(RepoPaths.SampleData, "gtfs.zip"));
            Assert.True(exit == 0, output);
            Assert.Contains("routes: 8", output, StringComparison.Ordinal);

            // The page and the sample city travel with the tool: `fleet` alone serves them from any folder.
            var url = FleetProcess.FreeUrl();
            var info = new ProcessStartInfo(fleet) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            info.ArgumentList.Add("serve");
            info.ArgumentList.Add("--urls");
            info.ArgumentList.Add(url);
            using var serve = Process.Start(info)!;
            try
            {
                using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(5) };
                var until = DateTime.UtcNow + TimeSpan.FromSeconds(90);
                var vehicles = 0;
                while (vehicles == 0)
                {
                    Assert.True(DateTime.UtcNow < until && !serve.HasExited, "the installed fleet did not serve the sample city within 90 s");
                    await Task.Delay(500, Ct);
                    try
                    {
                        using var doc = JsonDocument.Parse(await http.GetStringAsync(new Uri("/api/vehicles", UriKind.Relative), Ct));
                        vehicles = doc.RootElement.GetArrayLength();
                    }
                    catch (HttpRequestException)
                    {
                    }
                }

                Assert.Contains("<title>Fleet live map</title>", await http.GetStringAsync(new Uri("/", UriKind.Relative), Ct), StringComparison.Ordinal);
            }
            finally
            {
                serve.Kill(entireProcessTree: true);
                await serve.WaitForExitAsync(CancellationToken.None);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task<(int Exit, string Output)> RunAsync(string file, string workingDirectory, TimeSpan timeout, params string[] args)
    {
        var done = await FleetProcess.RunToEndAsync(file, workingDirectory, timeout, args);
        return (done.Exit, done.Output);
    }
}

/// <summary><c>fleet serve --config fleet.json</c>: serve's options from a file, the command line winning.</summary>
[Trait("Category", "Integration")]
public sealed class ConfigFileTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Config_ReplayAndUrlsFromTheFile_CommandLineWins()
    {
        var dir = Directory.CreateTempSubdirectory("fleet-config-").FullName;
        var fileUrl = FleetProcess.FreeUrl();
        var url = FleetProcess.FreeUrl();
        var config = Path.Combine(dir, "fleet.json");
        await File.WriteAllTextAsync(config, $$"""
            // serve's options; comments and trailing commas are fine
            {
              "urls": "{{fileUrl}}",
              "replay": "{{Path.Combine(RepoPaths.SampleData, "recording.hfp.gz")}}",
              "gtfs": "{{Path.Combine(RepoPaths.SampleData, "gtfs.zip")}}",
              "speed": 5,
              "loop": true,
              "tileUrl": "none",
            }
            """, Ct);
        using var serve = FleetProcess.StartIn(dir, "serve", "--config", config, "--urls", url);
        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(5) };
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        JsonElement replay = default;
        while (replay.ValueKind != JsonValueKind.Object)
        {
            Assert.True(DateTime.UtcNow < until && !serve.HasExited, $"serve --config did not come up:\n{serve.Output}");
            await Task.Delay(500, Ct);
            try
            {
                replay = JsonDocument.Parse(await http.GetStringAsync(new Uri("/api/replay", UriKind.Relative), Ct)).RootElement.Clone();
            }
            catch (HttpRequestException)
            {
            }
        }

        Assert.Equal(5, replay.GetProperty("speed").GetDouble());
        using var configJson = JsonDocument.Parse(await http.GetStringAsync(new Uri("/api/config", UriKind.Relative), Ct));
        Assert.False(configJson.RootElement.TryGetProperty("tileUrl", out var tile) && tile.ValueKind == JsonValueKind.String);
        Directory.Delete(dir, recursive: true);
    }

    [Theory]
    [InlineData("{\"speed\": 0}", "--speed must be > 0")]
    [InlineData("{\"bogus\": 1}", "--bogus")]
    [InlineData("[1, 2]", "must be one JSON object")]
    [InlineData("{not json", "not JSON")]
    [InlineData("{\"mqtt\": {\"url\": \"x\"}}", "\"mqtt\" must be a string, a number, true or an array of those")]
    public async Task Config_BadFile_UsageErrorNamingIt(string text, string says)
    {
        var dir = Directory.CreateTempSubdirectory("fleet-config-").FullName;
        var config = Path.Combine(dir, "fleet.json");
        await File.WriteAllTextAsync(config, text, Ct);

        var done = await FleetProcess.RunFleetAsync(dir, TimeSpan.FromMinutes(1), "serve", "--config", config);
        var (exit, output) = (done.Exit, done.Output);

        Assert.True(exit == 2, output);
        Assert.Contains(says, output, StringComparison.Ordinal);
        Directory.Delete(dir, recursive: true);
    }
}
