using System.IO.Compression;
using Fleet.Dashboard.Cli;
using Fleet.Ingest.Replay;
using Fleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fleet.Dashboard.Tests;

/// <summary><c>fleet replay --gtfs --out-events</c>: tracking batches overlapped with reading give the same bytes.</summary>
public sealed class ReplayOutEventsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task OutEvents_OverlapOnAndOff_ByteIdentical()
    {
        var dir = Directory.CreateTempSubdirectory("fleet-out-events-").FullName;
        try
        {
            // The first 40,000 lines of the sample recording (about 17 minutes of the morning): with the model the
            // engine cuts a batch every 1,024 events, so many batches overlap, and the model's statistics learn
            // between them.
            var slice = Path.Combine(dir, "slice.hfp");
            await using (var gz = new GZipStream(File.OpenRead(Path.Combine(RepoPaths.SampleData, "recording.hfp.gz")), CompressionMode.Decompress))
            using (var text = new StreamReader(gz))
            await using (var output = File.CreateText(slice))
            {
                for (var i = 0; i < 40_000 && await text.ReadLineAsync(Ct) is { } line; i++)
                {
                    await output.WriteLineAsync(line);
                }
            }

            var withOverlap = await RunAsync(dir, slice, overlap: true);
            var without = await RunAsync(dir, slice, overlap: false);

            Assert.True(withOverlap.Length > 100_000, $"{withOverlap.Length} bytes of derived events");
            Assert.True(withOverlap.AsSpan().SequenceEqual(without), "overlapped batches changed the derived events");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    // The status line (every millisecond) reads the engine's counters while batches run, as a terminal user's does.
    private static async Task<byte[]> RunAsync(string dir, string slice, bool overlap)
    {
        var events = Path.Combine(dir, overlap ? "overlap.jsonl" : "serial.jsonl");
        using (var target = new TrackingReplayTarget(Path.Combine(RepoPaths.SampleData, "gtfs.zip"), events, predictions: true,
            Path.Combine(RepoPaths.SampleData, "model.bin"), overlap))
        {
            var settings = new ReplayCommand.ReplaySettings([slice], new ReplayOptions { Speed = ReplayOptions.MaxSpeed }, TimeSpan.FromMilliseconds(1))
            {
                ProgressBar = false,
                StatusLine = _ => { },
            };
            var code = await ReplayCommand.RunAsync(settings, target, NullLoggerFactory.Instance, Ct);
            Assert.Equal(0, code);
        }

        return await File.ReadAllBytesAsync(events, Ct);
    }
}
