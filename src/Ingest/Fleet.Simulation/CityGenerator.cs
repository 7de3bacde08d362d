using System.Diagnostics;
using Fleet.Simulation.City;
using Fleet.Simulation.Dynamics;
using Fleet.Simulation.Output;

namespace Fleet.Simulation;

/// <summary>What <see cref="CityGenerator.Generate"/> wrote.</summary>
/// <param name="GtfsPath">The GTFS static zip.</param>
/// <param name="RecordingPath">The recording (HFP lines and GTFS-RT snapshots, gzip).</param>
/// <param name="TruthPath">The truth CSV.</param>
/// <param name="Routes">Routes in the schedule.</param>
/// <param name="Stops">Stops in the schedule.</param>
/// <param name="Trips">Trips in the schedule.</param>
/// <param name="Vehicles">Vehicles that ran (blocks).</param>
/// <param name="Lines">Lines in the recording, malformed ones included.</param>
/// <param name="Day">The day's figures.</param>
/// <param name="GtfsRtSnapshots">GTFS-RT feed messages written.</param>
/// <param name="Malformed">The deliberately malformed lines: 1-based line number in the (decompressed) recording and kind.</param>
/// <param name="UncompressedBytes">Size of the recording before compression.</param>
/// <param name="Elapsed">Wall time of the whole generation.</param>
/// <param name="RecordedFrom">The window's first instant (UTC): no line of the recording was received before it.</param>
/// <param name="RecordedUntil">The window's end (UTC): every line of the recording was received before it.</param>
public sealed record GenerateSummary(string GtfsPath, string RecordingPath, string TruthPath, int Routes, int Stops, int Trips,
    int Vehicles, long Lines, DayFigures Day, long GtfsRtSnapshots, IReadOnlyList<(long Line, string Kind)> Malformed,
    long UncompressedBytes, TimeSpan Elapsed, DateTime RecordedFrom, DateTime RecordedUntil)
{
    /// <summary>Recording lines per second of wall time.</summary>
    public double LinesPerSecond => Lines / Math.Max(1e-9, Elapsed.TotalSeconds);
}

/// <summary>
/// <c>fleet generate</c>: builds a synthetic city, simulates its day and writes gtfs.zip, recording.hfp.gz and
/// truth.csv into a folder.
/// </summary>
/// <remarks>Deterministic: the same options give byte-identical files. Stateless; thread-safe.</remarks>
public static class CityGenerator
{
    /// <summary>File name of the GTFS static feed.</summary>
    public const string GtfsFileName = "gtfs.zip";

    /// <summary>File name of the recording.</summary>
    public const string RecordingFileName = "recording.hfp.gz";

    /// <summary>File name of the truth.</summary>
    public const string TruthFileName = "truth.csv";

    /// <summary>Generates the three files into <paramref name="outputDirectory"/> (created if missing).</summary>
    public static GenerateSummary Generate(GenerateOptions options, string outputDirectory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(outputDirectory);
        var clock = Stopwatch.StartNew();
        var city = CityBuilder.Build(options);
        Directory.CreateDirectory(outputDirectory);
        var gtfsPath = Path.Combine(outputDirectory, GtfsFileName);
        var recordingPath = Path.Combine(outputDirectory, RecordingFileName);
        var truthPath = Path.Combine(outputDirectory, TruthFileName);
        using (var gtfs = File.Create(gtfsPath))
        {
            GtfsZipWriter.Write(city, gtfs);
        }

        DaySimulation day;
        DayFigures figures;
        OrderedRecording recording;
        long snapshots = 0;
        using (var file = File.Create(recordingPath))
        using (var gzip = new ParallelGzipStream(file, options.GzipLevel))
        {
            // No BufferedStream: ParallelGzipStream copies each line straight into its 4 MB chunk.
            recording = new OrderedRecording(gzip);
            var sink = new GtfsRtSnapshotWriter(city);
            day = new DaySimulation(city, options.Seed, recording, sink);
            figures = day.Run();
            snapshots = sink.Count;
        }

        using (var truth = File.Create(truthPath))
        {
            TruthWriter.Write(city, day, truth);
        }

        return new GenerateSummary(gtfsPath, recordingPath, truthPath, city.Routes.Count, city.Stops.Count, city.Trips.Count,
            city.Blocks.Count, recording.LinesWritten, figures, snapshots, recording.TaggedLines, recording.BytesWritten, clock.Elapsed,
            city.ToUtc(city.WindowStartSeconds), city.ToUtc(city.WindowEndSeconds));
    }
}

/// <summary>A sink that counts what it wrote.</summary>
public interface ICountingSink
{
    /// <summary>Feed messages written.</summary>
    public long Count { get; }
}
