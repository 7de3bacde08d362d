using System.Text.Json;
using Fleet.Dashboard.Cli;
using Fleet.Simulation;

namespace Fleet.Dashboard.Tests;

public sealed class GenerateCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("fleet-generate-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Generate_SmallCity_WritesThreeFilesAndExitsZero()
    {
        var exit = await FleetCli.Build().Parse(["generate", "--out", _dir, "--city", "2", "--routes", "2", "--vehicles", "8", "--hours", "1"])
            .InvokeAsync(cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(0, exit);
        Assert.True(File.Exists(Path.Combine(_dir, CityGenerator.GtfsFileName)));
        Assert.True(File.Exists(Path.Combine(_dir, CityGenerator.RecordingFileName)));
        Assert.True(File.Exists(Path.Combine(_dir, CityGenerator.TruthFileName)));
    }

    [Fact]
    public async Task Generate_BadDate_ExitsTwoWithoutFiles()
    {
        var exit = await FleetCli.Build().Parse(["generate", "--out", _dir, "--date", "2026-02-30"])
            .InvokeAsync(cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(2, exit);
        Assert.Empty(Directory.EnumerateFiles(_dir));
    }

    [Fact]
    public async Task Inspect_GeneratedRecording_RejectsOnlyTheDeliberatelyMalformedLines()
    {
        var summary = CityGenerator.Generate(new GenerateOptions { City = 2, Routes = 2, Vehicles = 8, Hours = 1 }, _dir);
        var output = new StringWriter();

        Assert.Equal(0, await InspectCommand.InspectFileAsync(summary.RecordingPath, json: true, output, TestContext.Current.CancellationToken));

        using var doc = JsonDocument.Parse(output.ToString());
        var root = doc.RootElement;
        Assert.Equal(summary.Day.HfpMessages, root.GetProperty("parsed").GetInt64());
        Assert.Equal(summary.GtfsRtSnapshots, root.GetProperty("gtfsRtSnapshots").GetInt64());
        var rejected = root.GetProperty("rejected").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64());
        Assert.Equal(summary.Malformed.Count, rejected.Values.Sum());
        // The five kinds map to four named reasons (see IngestCompatibilityTests in Fleet.Simulation.Tests).
        Assert.All(rejected.Keys, k => Assert.Contains(k, new[] { "TruncatedLine", "BadJson", "BadTopic", "BadReceiveTime" }));
    }
}
